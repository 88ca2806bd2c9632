/// A failure of the hub, a release or a dataset download, said in words.
public struct HubError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
