import Logging

/// Downloads' progress and notes (stderr through the console handler: `notice`), and at debug the
/// cache paths files are served from.
let hubLog = Logger(label: "vkprobe.hub")
