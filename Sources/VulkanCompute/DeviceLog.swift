import Logging

/// The device layer's log: its decisions (which device and why, memory budget, binding cap,
/// pipeline and shader cache files) at debug; validation messages, when echoed, as warnings.
let deviceLog = Logger(label: "vkprobe.device")
