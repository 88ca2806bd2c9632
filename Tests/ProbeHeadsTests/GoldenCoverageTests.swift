import Foundation
import ProbeTestSupport
import Testing

/// Every golden file is checked by some test target, or reported as a known gap — never passed
/// silently.
@Suite struct GoldenCoverageTests {
    /// Golden kinds whose features are not built yet: the image pipeline (`transform_*`). Each
    /// file of these kinds is recorded as a known issue (reported by Swift Testing as such, not as
    /// passed) until its checks exist. (`vit_*`: ProbeBackbonesTests.)
    @Test(arguments: goldenFiles { $0 == .transform })
    func goldensWithoutTheirFeatureAreAKnownGap(_ fileName: String) {
        withKnownIssue("\(fileName): the image transform this golden checks is not built yet") {
            Issue.record("\(fileName) is not checked")
        }
    }
}
