"""Lets upstream's heads run on a CPU-only machine without touching their code: simpool and
esimpool create tensors with device='cuda' and other_pool calls .cuda(); both go to the CPU."""


def keep_upstream_on_cpu(torch):
    real_tensor = torch.tensor

    def cpu_tensor(*a, **k):
        if str(k.get("device", "")).startswith("cuda"):
            k["device"] = "cpu"
        return real_tensor(*a, **k)
    torch.tensor = cpu_tensor
    torch.Tensor.cuda = lambda self, *a, **k: self
