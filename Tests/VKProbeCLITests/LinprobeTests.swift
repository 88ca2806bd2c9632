import Foundation
import ProbeTestSupport
import Testing

/// `vkprobe linprobe` takes upstream's main_linprobe.py command as its README writes it.
@Suite struct LinprobeTests {
    @Test func upstreamsCommandMapsOntoTrain() throws {
        let run = try runVkprobe(["linprobe", "--dry-run", "--epochs", "90", "--optimizer", "lars", "--blr", "0.1", "--batch_size", "512",
                                  "--accum_iter", "1", "--dataset_name", "imagenet1k", "--nb_classes", "1000", "--data_path", "/data/in1k",
                                  "--d_out", "1", "--amp", "bfloat16", "--model", "dinov2_vitb14_reg", "--finetune", "w.safetensors",
                                  "--cls_features", "ep_all", "--ep_queries", "32", "--output_dir=runs/x", "--pin_mem", "--early_stop",
                                  "--auto_resume", "--return_block", "11"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("as: vkprobe train --model vit_base_patch14_reg4_dinov2 --weights w.safetensors --epochs 90 --optimizer lars --blr 0.1 --batch-size 512 --accum-iter 1 --dataset imagenet1k --classes 1000 --data /data/in1k --ep-d-out 1 --amp bfloat16 --heads ep_all --ep-queries 32 --early-stop --auto-resume --block 11 --output runs/x"), "\(run.stdout)")
        #expect(run.stdout.contains("note: --pin_mem dropped"))
        let clip = try runVkprobe(["linprobe", "--dry-run", "--model", "ViT-B-16", "--openclip", "--finetune", "c.safetensors", "--cls_features", "cls"])
        #expect(clip.stdout.contains("--model vit_base_patch16_clip_224.openai") && clip.stdout.contains("--heads lp"), "\(clip.stdout)")
        // Refused by name, with the reason.
        let variants = try runVkprobe(["linprobe", "--dry-run", "--model", "vit_base_patch16", "--finetune", "w.safetensors", "--d_out", "2",
                                       "--abmilp_sa", "map", "--abmilp_cond", "pe"])
        #expect(variants.stdout.contains("--ep-d-out 2 --abmilp-sa map --abmilp-cond pe"), "\(variants.stdout)")
        // --finetuning unfreezes everything: --finetune all.
        let ft = try runVkprobe(["linprobe", "--dry-run", "--model", "vit_base_patch16", "--finetune", "w.safetensors", "--finetuning", "--cls_features", "ep"])
        #expect(ft.status == 0 && ft.stdout.contains("--finetune all"), "\(ft.stdout) \(ft.stderr)")
        for (args, reason) in [(["--finetune", "m.pth"], "tools/convert_checkpoint.py"),
                               (["--frobnicate"], "--frobnicate: not an option"), (["--knn_eval"], "vkprobe knn")] {
            let r = try runVkprobe(["linprobe", "--dry-run", "--model", "vit_base_patch16"] + (args.contains("--finetune") ? args : ["--finetune", "w.safetensors"] + args))
            guard !args.isEmpty else { continue }
            #expect(r.status != 0 && r.stderr.contains(reason), "\(args): \(r.stderr)")
        }
    }
}
