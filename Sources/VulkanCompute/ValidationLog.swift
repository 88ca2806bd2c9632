import CVulkan
import Foundation
import Logging

/// Messages reported by the Khronos validation layer (and the loader) through VK_EXT_debug_utils.
/// Tests assert `messages.isEmpty`; the CLI prints them to stderr as they arrive when asked.
public final class ValidationLog: @unchecked Sendable {
    public struct Message: Sendable, CustomStringConvertible {
        public let severity: String
        public let id: String
        public let text: String
        public var description: String { "[\(severity)] \(id): \(text)" }
    }
    private let lock = NSLock()
    private var stored: [Message] = []
    /// Also print each message to stderr as it arrives.
    public var echo: Bool

    public init(echo: Bool = false) { self.echo = echo }

    public var messages: [Message] { lock.withLock { stored } }
    public var errorCount: Int { lock.withLock { stored.filter { $0.severity == "error" }.count } }
    public var count: Int { lock.withLock { stored.count } }

    func append(_ m: Message) {
        lock.withLock { stored.append(m) }
        if echo { deviceLog.warning("vulkan validation: \(m)") }
    }

    public func clear() { lock.withLock { stored.removeAll() } }
}

/// Capture-free C callback; the log travels through pUserData.
func debugUtilsCallback(
    _ severity: VkDebugUtilsMessageSeverityFlagBitsEXT,
    _ types: VkDebugUtilsMessageTypeFlagsEXT,
    _ data: UnsafePointer<VkDebugUtilsMessengerCallbackDataEXT>?,
    _ user: UnsafeMutableRawPointer?
) -> VkBool32 {
    guard let data, let user else { return VkBool32(VK_FALSE) }
    let log = Unmanaged<ValidationLog>.fromOpaque(user).takeUnretainedValue()
    let sev: String
    switch severity {
    case VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT: sev = "error"
    case VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT: sev = "warning"
    case VK_DEBUG_UTILS_MESSAGE_SEVERITY_INFO_BIT_EXT: sev = "info"
    default: sev = "verbose"
    }
    let id = data.pointee.pMessageIdName.map { String(cString: $0) } ?? "\(data.pointee.messageIdNumber)"
    let text = data.pointee.pMessage.map { String(cString: $0) } ?? ""
    log.append(.init(severity: sev, id: id, text: text))
    return VkBool32(VK_FALSE)
}
