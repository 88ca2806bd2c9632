import Foundation
import ProbeTestSupport
import SafeTensors
import Testing

/// Heads trained by upstream's own code in PyTorch (Tests/Goldens/foreign, written by
/// Bench/tools/make_foreign_heads.py: EP, LP, AB-MILP, SigLIP's MAP pool and JEPA's attentive
/// pooler, each with upstream's BatchNorm1d and Linear, saved by `save_file(head.state_dict())`)
/// evaluate in VulkanProbe with `--eval-only` — no training state — to the top-1 PyTorch measured
/// on the same validation tokens (128 samples: one is 0.78 points, so equal means every prediction).
@Suite struct ForeignHeadTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Goldens/foreign")

    @Test(arguments: ["ep", "lp", "abmilp", "siglip", "jepa"])
    func evaluatesToPyTorchsAccuracy(_ head: String) throws {
        let file = try SafeTensorsFile(path: Self.dir.appendingPathComponent("\(head).safetensors").path)
        let want = try #require(file.metadata["pytorch_acc1"].flatMap(Double.init))
        let run = try temporaryDirectory("foreign-\(head)")
        try FileManager.default.createDirectory(at: run.appendingPathComponent(head), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.dir.appendingPathComponent("\(head).safetensors"), to: run.appendingPathComponent("\(head)/checkpoint-last.safetensors"))
        let r = try runVkprobe(["train", "--validation", "--train-tokens", Self.dir.appendingPathComponent("train.safetensors").path,
                                "--val-tokens", Self.dir.appendingPathComponent("val.safetensors").path, "--heads", head,
                                "--ep-queries", "8", "--num-heads", "4", "--output", run.path, "--eval-only"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("no training state: evaluation only"), "\(r.stdout)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("summary.json"))) as? [String: Any]
        let got = try #require(((summary?["heads"] as? [String: Any])?[head] as? [String: Any])?["best_acc1"] as? Double)
        #expect(abs(got - want) <= 0.1, "\(head): VulkanProbe \(got)%, PyTorch \(want)%")
    }

    /// `--eval-only --init-head ep=FILE` (what `linprobe --eval --resume FILE` runs) evaluates that
    /// file in an empty output folder, to PyTorch's accuracy.
    @Test func evaluatesAGivenHeadWithNoRunSaved() throws {
        let file = try SafeTensorsFile(path: Self.dir.appendingPathComponent("ep.safetensors").path)
        let want = try #require(file.metadata["pytorch_acc1"].flatMap(Double.init))
        let run = try temporaryDirectory("foreign-init-eval")
        let r = try runVkprobe(["train", "--validation", "--train-tokens", Self.dir.appendingPathComponent("train.safetensors").path,
                                "--val-tokens", Self.dir.appendingPathComponent("val.safetensors").path, "--heads", "ep",
                                "--ep-queries", "8", "--output", run.path, "--eval-only", "--init-head", "ep=" + Self.dir.appendingPathComponent("ep.safetensors").path])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("summary.json"))) as? [String: Any]
        let got = try #require(((summary?["heads"] as? [String: Any])?["ep"] as? [String: Any])?["best_acc1"] as? Double)
        #expect(abs(got - want) <= 0.1, "ep: VulkanProbe \(got)%, PyTorch \(want)%")
    }

    /// The same heads saved by upstream's own `misc.save_model` (`.pth`: `model`, `args`,
    /// `saved_module`; LP as a fine-tuning run's whole model) and converted by
    /// tools/convert_checkpoint.py evaluate to PyTorch's accuracy with no head flags at all: EP's
    /// queries come from its `0.cls_token` shape, the attention heads from upstream's arguments.
    @Test(arguments: ["ep", "lp", "abmilp", "siglip", "jepa"])
    func upstreamSaveModelCheckpointsNeedNoFlags(_ head: String) throws {
        let source = Self.dir.appendingPathComponent("pth_\(head).safetensors")
        let file = try SafeTensorsFile(path: source.path)
        let want = try #require(file.metadata["pytorch_acc1"].flatMap(Double.init))
        #expect(file.metadata["saved_module"] == (head == "lp" ? "model" : "head") && file.metadata["head"] == head)
        let run = try temporaryDirectory("foreign-pth-\(head)")
        try FileManager.default.createDirectory(at: run.appendingPathComponent(head), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source, to: run.appendingPathComponent("\(head)/checkpoint-last.safetensors"))
        let r = try runVkprobe(["train", "--train-tokens", Self.dir.appendingPathComponent("train.safetensors").path,
                                "--val-tokens", Self.dir.appendingPathComponent("val.safetensors").path, "--heads", head,
                                "--output", run.path, "--eval-only"])
        #expect(r.status == 0, "\(r.stderr)")
        if head == "ep" { #expect(r.stdout.contains("--ep-queries 8 from 0.cls_token [1, 8, 32]"), "\(r.stdout)") }
        if head == "jepa" { #expect(r.stdout.contains("--num-heads 4 from the checkpoint's arguments"), "\(r.stdout)") }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("summary.json"))) as? [String: Any]
        let got = try #require(((summary?["heads"] as? [String: Any])?[head] as? [String: Any])?["best_acc1"] as? Double)
        #expect(abs(got - want) <= 0.1, "\(head): VulkanProbe \(got)%, PyTorch \(want)%")
    }

    /// A head of other options is refused tensor by tensor, naming the flag given.
    @Test func aMismatchedHeadIsRefusedNamingTheFlag() throws {
        let run = try temporaryDirectory("foreign-mismatch")
        try FileManager.default.createDirectory(at: run.appendingPathComponent("ep"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.dir.appendingPathComponent("ep.safetensors"), to: run.appendingPathComponent("ep/checkpoint-last.safetensors"))
        let r = try runVkprobe(["train", "--train-tokens", Self.dir.appendingPathComponent("train.safetensors").path,
                                "--val-tokens", Self.dir.appendingPathComponent("val.safetensors").path, "--heads", "ep",
                                "--ep-queries", "4", "--output", run.path, "--eval-only"])
        #expect(r.status != 0 && r.stderr.contains("--eval-only") && r.stderr.contains("cls_token") && !r.stderr.contains("--resume"), "\(r.stderr)")
        let none = try runVkprobe(["train", "--train-tokens", Self.dir.appendingPathComponent("train.safetensors").path,
                                   "--val-tokens", Self.dir.appendingPathComponent("val.safetensors").path, "--heads", "lp",
                                   "--output", run.path, "--eval-only"])
        #expect(none.status != 0 && none.stderr.contains("--eval-only") && none.stderr.contains("lp/checkpoint-last.safetensors does not exist"), "\(none.stderr)")
    }

    /// `--init-head ep=FILE` starts EP from upstream's trained head: after one epoch at lr 0 (only
    /// its BatchNorm statistics move) it is far above a fresh head's chance level.
    @Test func initHeadStartsFromUpstreamsWeights() throws {
        let run = try temporaryDirectory("foreign-init")
        let args = ["train", "--train-tokens", Self.dir.appendingPathComponent("train.safetensors").path,
                    "--val-tokens", Self.dir.appendingPathComponent("val.safetensors").path, "--heads", "ep", "--ep-queries", "8",
                    "--epochs", "1", "--lr", "0", "--warmup-epochs", "0", "--batch-size", "32"]
        let started = try runVkprobe(args + ["--output", run.appendingPathComponent("init").path, "--init-head", "ep=" + Self.dir.appendingPathComponent("ep.safetensors").path])
        #expect(started.status == 0 && started.stdout.contains("ep: starts from"), "\(started.stdout)\(started.stderr)")
        let fresh = try runVkprobe(args + ["--output", run.appendingPathComponent("fresh").path])
        #expect(fresh.status == 0)
        func acc(_ name: String) throws -> Double {
            let s = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("\(name)/summary.json"))) as? [String: Any]
            return try #require(((s?["heads"] as? [String: Any])?["ep"] as? [String: Any])?["best_acc1"] as? Double)
        }
        let (initialised, initial) = (try acc("init"), try acc("fresh"))
        #expect(initialised > 70 && initial < 50, "init \(initialised)%, fresh \(initial)%")
        let wrong = try runVkprobe(args + ["--output", run.appendingPathComponent("wrong").path, "--init-head", "lp=x.safetensors"])
        #expect(wrong.status != 0 && wrong.stderr.contains("--init-head lp=x.safetensors: no head lp"), "\(wrong.stderr)")
    }
}
