// Generates the typed Swift face of every compute shader from its GLSL, at build time (run by the
// ShaderCompiler plugin): for each source, one `enum <Name>Kernel: ShaderKernel` with
//   - `Variant`: the builds of that source (Shaders/variants.txt), by their SPIR-V resource names;
//   - `Push`: the push-constant block, field by field in declaration order (uint/int/float);
//     sources whose blocks are identical (the texel and storage-buffer twins of one body, the GEMM
//     family's shared block) share the first one's type, so a call site builds a block once for
//     whichever of them it dispatches (and `Spec` too where their constants are the same);
//   - `Spec`: the specialization constants in constant_id order (the workgroup size is
//     `localSizeX`), with the GLSL defaults;
//   - `bindingCount`: the storage buffers the kernel declares;
//   - `texelBindings` and `texelFormat(_:binding:specValues:)`: the bindings read as uniform texel
//     buffers and, per build, the format each reads, from the GLSL's
//     `#pragma vkprobe_texel(BINDING, FORMAT)`, `(BINDING, FLAG, FORMAT_IF_SET, FORMAT)` or
//     `(BINDING, CONSTANT, N, FORMAT_IF_EQUAL, FORMAT)` (a specialization constant decides).
// Plus `ShaderConstants`: every `const uint NAME = <n>u;` of the shared headers (*.glsl), the codes
// Swift enums must agree with (checked by a test).
//
// Each build is preprocessed with `glslc -E` and its defines, so what is read is exactly what the
// compiler sees. A change of push block, constants or bindings in GLSL changes these types, and a
// Swift call site that no longer matches fails to compile.
//
// Usage: ShaderInterfaceGenerator --glslc PATH --shaders DIR --output FILE
//            --build OUTPUT=SOURCE[:-DNAME,-DNAME=V...] ...
import Foundation

struct GeneratorError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = "ShaderInterfaceGenerator: " + d }
}

struct Build { let output: String; let source: String; let defines: [String] }

/// One push-constant field; `count` > 1 for a fixed array (`uint shape[6]`).
struct Field: Hashable { let type: String; let name: String; var count = 1 }
struct SpecConstant: Hashable { let id: Int; let type: String; let name: String; let defaultValue: String }
/// A texel binding's format: `format`, or `whenTrue` where the specialization constant
/// `condition` is true (bool) or equals `equals` (uint).
struct TexelRule: Equatable { var condition: String?; var equals: UInt32?; var whenTrue: String?; var format: String }
let texelFormats: Set<String> = ["rgba32f", "rgba32ui", "rgba16f", "rgba16ui", "r32ui", "r16f", "r16ui"]

/// The `#pragma vkprobe_texel` rules of one preprocessed build, checked against its interface.
func texelRules(of text: String, _ build: Build, _ i: Interface) throws -> [Int: TexelRule] {
    var rules: [Int: TexelRule] = [:]
    // `glslc -E` prints the pragma's tokens without spaces (and operators in its own encoding):
    // the arguments are plain words and numbers between commas.
    for m in matches(#"#pragma\s*vkprobe_texel\s*\(([\w\s,]*)\)"#, in: text) {
        let a = m[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let b = a.first.flatMap({ Int($0) }), [2, 4, 5].contains(a.count) else {
            throw GeneratorError("\(build.output): vkprobe_texel(\(m[1])): expected (BINDING, FORMAT), (BINDING, FLAG, FORMAT_IF_SET, FORMAT) or (BINDING, CONSTANT, N, FORMAT_IF_EQUAL, FORMAT)")
        }
        guard rules[b] == nil else { throw GeneratorError("\(build.output): binding \(b) has two vkprobe_texel pragmas") }
        var r = TexelRule(condition: a.count > 2 ? a[1] : nil, equals: a.count == 5 ? UInt32(a[2]) : nil, whenTrue: a.count > 2 ? a[a.count - 2] : nil, format: a[a.count - 1])
        if a.count == 5 && r.equals == nil { throw GeneratorError("\(build.output): vkprobe_texel(\(m[1])): \(a[2]) is not a number") }
        for f in [r.format] + (r.whenTrue.map { [$0] } ?? []) where !texelFormats.contains(f) {
            throw GeneratorError("\(build.output): vkprobe_texel format \(f) (expected one of \(texelFormats.sorted().joined(separator: ", ")))")
        }
        if let c = r.condition {
            guard let spec = i.specs.first(where: { $0.name == c }), spec.type == (r.equals == nil ? "bool" : "uint") else {
                throw GeneratorError("\(build.output): vkprobe_texel condition \(c) is not a \(r.equals == nil ? "bool" : "uint") specialization constant")
            }
        }
        if r.condition == nil { r.whenTrue = nil }
        rules[b] = r
    }
    guard Set(rules.keys) == i.texel else {
        throw GeneratorError("\(build.output): texel bindings \(i.texel.sorted()) but vkprobe_texel pragmas for \(rules.keys.sorted()): declare each texel binding's format once")
    }
    return rules
}
struct Interface: Equatable {
    var push: [Field] = []
    var specs: [SpecConstant] = []
    var bindings = 0
    /// Per binding: "read" (readonly), "write" (writeonly) or "readWrite".
    var access: [String] = []
    var cooperativeMatrix = false
    /// Bindings declared as uniform texel buffers.
    var texel: Set<Int> = []
}

func parseArguments() throws -> (glslc: String, shaders: String, output: String, builds: [Build]) {
    var args = Array(CommandLine.arguments.dropFirst())
    var glslc = "", shaders = "", output = ""
    var builds: [Build] = []
    while !args.isEmpty {
        let flag = args.removeFirst()
        guard !args.isEmpty else { throw GeneratorError("\(flag) needs a value") }
        let value = args.removeFirst()
        switch flag {
        case "--glslc": glslc = value
        case "--shaders": shaders = value
        case "--output": output = value
        case "--build":
            let parts = value.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw GeneratorError("--build \(value): expected OUTPUT=SOURCE[:DEFINES]") }
            let rest = parts[1].split(separator: ":", maxSplits: 1).map(String.init)
            let defines = rest.count > 1 ? rest[1].split(separator: ",").map(String.init) : []
            builds.append(Build(output: parts[0], source: rest[0], defines: defines))
        default: throw GeneratorError("unknown argument \(flag)")
        }
    }
    guard !glslc.isEmpty, !shaders.isEmpty, !output.isEmpty else { throw GeneratorError("--glslc, --shaders and --output are required") }
    return (glslc, shaders, output, builds)
}

func preprocess(_ build: Build, glslc: String, shaders: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: glslc)
    p.arguments = ["-E", "--target-env=vulkan1.2", "-std=460", "-I", shaders] + build.defines + [shaders + "/" + build.source]
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let text = out.fileHandleForReading.readDataToEndOfFile()
    let message = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw GeneratorError("glslc -E \(build.source) \(build.defines.joined(separator: " ")) failed: \(String(decoding: message, as: UTF8.self))")
    }
    return String(decoding: text, as: UTF8.self)
}

func matches(_ pattern: String, in text: String) -> [[String]] {
    let re = try! NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
    let ns = text as NSString
    return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
        (0..<m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0)) }
    }
}

func interface(of text: String, _ build: Build) throws -> Interface {
    var i = Interface()
    i.cooperativeMatrix = text.contains("GL_KHR_cooperative_matrix")
    let blocks = matches(#"layout\s*\(\s*push_constant\s*\)\s*uniform\s+\w+\s*\{([^}]*)\}"#, in: text)
    guard blocks.count <= 1 else { throw GeneratorError("\(build.source): more than one push-constant block") }
    if var body = blocks.first?[1] {
        // A block holding one struct (common.glsl's PUSH_PARAMS): that struct's fields.
        let members = body.split(separator: ";").map { $0.split(whereSeparator: \.isWhitespace) }.filter { !$0.isEmpty }
        if members.count == 1, members[0].count == 2, !["uint", "int", "float"].contains(String(members[0][0])) {
            let name = NSRegularExpression.escapedPattern(for: String(members[0][0]))
            guard let fields = matches(#"struct\s+"# + name + #"\s*\{([^}]*)\}"#, in: text).first?[1] else {
                throw GeneratorError("\(build.source): push block member type \(members[0][0]) is not a struct declared in the shader")
            }
            body = fields
        }
        for decl in body.split(separator: ";") {
            let words = decl.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "," }).map(String.init)
            guard let type = words.first else { continue }
            guard ["uint", "int", "float"].contains(type) else {
                throw GeneratorError("\(build.source): push constant type \(type) is not supported (uint, int, float)")
            }
            for word in words.dropFirst() {
                if let open = word.firstIndex(of: "["), let n = Int(word[word.index(after: open)...].dropLast()), word.hasSuffix("]") {
                    i.push.append(Field(type: type, name: String(word[..<open]), count: n))
                } else {
                    i.push.append(Field(type: type, name: word))
                }
            }
        }
    }
    for m in matches(#"layout\s*\(\s*local_size_x_id\s*=\s*(\d+)\s*\)\s*in\s*;"#, in: text) {
        i.specs.append(SpecConstant(id: Int(m[1])!, type: "uint", name: "localSizeX", defaultValue: ""))
    }
    for m in matches(#"layout\s*\(\s*constant_id\s*=\s*(\d+)\s*\)\s*const\s+(uint|int|bool|float)\s+(\w+)\s*=\s*([^;]+);"#, in: text) {
        i.specs.append(SpecConstant(id: Int(m[1])!, type: m[2], name: m[3], defaultValue: m[4].trimmingCharacters(in: .whitespaces)))
    }
    let declared = matches(#"constant_id"#, in: text).count
    guard declared == i.specs.count - (i.specs.first { $0.name == "localSizeX" } == nil ? 0 : 1) else {
        throw GeneratorError("\(build.source): a constant_id is not a plain integer literal after preprocessing (define literal ids)")
    }
    i.specs.sort { $0.id < $1.id }
    guard i.specs.map(\.id) == Array(0..<i.specs.count) else {
        throw GeneratorError("\(build.source): specialization constant ids \(i.specs.map(\.id)) must run 0, 1, 2, ... without gaps")
    }
    // Each binding's qualifier: a buffer declared without readonly may be written whatever the
    // specialization (the validation layer assumes so), so streams must track it as written.
    var access: [Int: Set<String>] = [:]
    for m in matches(#"layout\s*\([^)]*\bbinding\s*=\s*(\d+)[^)]*\)\s*((?:readonly|writeonly|restrict|coherent|\s)*)\s*buffer"#, in: text) {
        let q = m[2]
        access[Int(m[1])!, default: []].insert(q.contains("readonly") ? "read" : q.contains("writeonly") ? "write" : "readWrite")
    }
    // Uniform texel buffers (`uniform [iu]textureBuffer`, read with GL_EXT_samplerless_texture_functions): read-only, bound through buffer views.
    for m in matches(#"layout\s*\([^)]*\bbinding\s*=\s*(\d+)[^)]*\)\s*uniform\s+(?:highp\s+|mediump\s+)?[iu]?textureBuffer\b"#, in: text) {
        access[Int(m[1])!, default: []].insert("read")
        i.texel.insert(Int(m[1])!)
    }
    guard Set(access.keys) == Set(0..<access.count) else { throw GeneratorError("\(build.source): bindings \(access.keys.sorted()) must run 0, 1, 2, ...") }
    i.bindings = access.count
    // A binding declared twice (aliases, e.g. vec4 views) counts as written if any declaration may write.
    i.access = (0..<access.count).map { b in
        let a = access[b]!
        return a.count == 1 ? a.first! : "readWrite"
    }
    return i
}

/// A build's case in its source's `Variant`: `base` for the source's own name, else what follows it.
func variantCase(_ output: String, _ stem: String) -> String {
    output == stem ? "base" : output.hasPrefix(stem + "_") ? String(output.dropFirst(stem.count + 1)) : output
}

/// `gemm_cpu.comp` → `GemmCpu`.
func typeName(_ source: String) -> String {
    (source.split(separator: "/").last.map(String.init) ?? source).replacingOccurrences(of: ".comp", with: "").split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
}

let swiftKeywords: Set<String> = ["in", "is", "as", "default", "case", "var", "let", "func", "return", "repeat", "where", "switch", "operator", "init", "self", "Type", "protocol", "extension", "import", "class", "struct", "enum", "internal", "public", "private", "static", "inout", "true", "false", "nil", "super", "do", "if", "else", "for", "while", "guard", "break", "continue", "throw", "throws", "try", "catch", "defer", "subscript", "typealias", "associatedtype", "any", "some"]
func ident(_ s: String) -> String { swiftKeywords.contains(s) ? "`\(s)`" : s }

func swiftValue(_ spec: SpecConstant) -> String {
    switch spec.type {
    case "bool": return spec.defaultValue
    case "float": return "Float(\(spec.defaultValue.replacingOccurrences(of: "f", with: "")))"
    case "int": return "Int32(\(spec.defaultValue))"
    default: return "UInt32(\(spec.defaultValue.replacingOccurrences(of: "u", with: "").replacingOccurrences(of: "U", with: "")))"
    }
}

/// `sharedPush`, `sharedSpec`: the kernel types whose identical `Push` and `Spec` this one reuses
/// (nil: it declares its own).
func render(_ source: String, _ outputs: [String], _ i: Interface, texelSets: [Set<Int>], texel: [[Int: TexelRule]], sharedPush: String?, sharedSpec: String?) -> String {
    let stem = (source.split(separator: "/").last.map(String.init) ?? source).replacingOccurrences(of: ".comp", with: "")
    var s = "/// `Shaders/\(source)`: \(i.bindings) storage buffers, \(i.push.map(\.count).reduce(0, +)) push-constant words.\n"
    s += "public enum \(typeName(source))Kernel: ShaderKernel {\n"
    s += "    public static let bindingCount = \(i.bindings)\n"
    if i.cooperativeMatrix { s += "    public static let needsCooperativeMatrix = true\n" }
    if texelSets.contains(where: { !$0.isEmpty }) {
        s += "    /// The bindings each build reads as uniform texel buffers.\n"
        s += "    public static func texelBindings(_ variant: Variant) -> [Int] {\n        switch variant {\n"
        for (o, set) in zip(outputs, texelSets) { s += "        case .\(ident(variantCase(o, stem))): return \(set.sorted())\n" }
        s += "        }\n    }\n"
        s += "    /// The format each texel binding reads in a build (the GLSL's `#pragma vkprobe_texel`), for its\n"
        s += "    /// specialization constants in constant_id order (missing ones at their defaults).\n"
        s += "    public static func texelFormat(_ variant: Variant, binding: Int, specValues s: [UInt32]) -> TexelFormat? {\n"
        s += "        switch (variant, binding) {\n"
        for (o, rules) in zip(outputs, texel) {
            for (b, r) in rules.sorted(by: { $0.key < $1.key }) {
                var value = "." + r.format
                if let c = r.condition, let spec = i.specs.first(where: { $0.name == c }), let t = r.whenTrue {
                    let d = spec.defaultValue.replacingOccurrences(of: "u", with: "")
                    let fallback = d == "true" ? "1" : d == "false" ? "0" : d
                    let read = "(s.count > \(spec.id) ? s[\(spec.id)] : \(fallback))"
                    value = "\(read) \(r.equals.map { "== \($0)" } ?? "!= 0") ? .\(t) : .\(r.format)"
                }
                s += "        case (.\(ident(variantCase(o, stem))), \(b)): return \(value)\n"
            }
        }
        s += "        default: return nil\n        }\n    }\n"
    }
    s += "    /// How the GLSL declares each binding (readonly, writeonly, or neither).\n"
    s += "    public static let bindingAccess: [Access] = [\(i.access.map { "." + $0 }.joined(separator: ", "))]\n"
    s += "    /// The SPIR-V builds of this source.\n"
    s += "    public enum Variant: String, CaseIterable, Sendable {\n"
    for o in outputs { s += "        case \(ident(variantCase(o, stem))) = \"\(o)\"\n" }
    s += "    }\n"
    // Push constants: every field required, so a new GLSL field breaks every stale call site.
    func swiftScalar(_ t: String) -> String { t == "float" ? "Float" : t == "int" ? "Int32" : "UInt32" }
    func paramScalar(_ t: String) -> String { t == "float" ? "Float" : "Int" }
    func convert(_ t: String, _ v: String) -> String {
        t == "float" ? v : t == "int" ? "Int32(truncatingIfNeeded: \(v))" : "UInt32(truncatingIfNeeded: \(v))"
    }
    func word(_ t: String, _ v: String) -> String { t == "float" ? "\(v).bitPattern" : t == "int" ? "UInt32(bitPattern: \(v))" : v }
    if let sharedPush {
        s += "    /// The same push-constant block as \(sharedPush)'s.\n    public typealias Push = \(sharedPush).Push\n"
        return s + renderSpec(i, shared: sharedSpec) + "}\n"
    }
    s += "    public struct Push: ShaderPush {\n"
    for f in i.push {
        s += "        public var \(ident(f.name)): \(f.count > 1 ? "[\(swiftScalar(f.type))]" : swiftScalar(f.type))\n"
    }
    s += "        public static let wordCount = \(i.push.map(\.count).reduce(0, +))\n"
    let params = i.push.map { "\($0.name): \($0.count > 1 ? "[\(paramScalar($0.type))]" : paramScalar($0.type))" }.joined(separator: ", ")
    s += "        public init(\(params)) {\n"
    for f in i.push {
        if f.count > 1 {
            s += "            precondition(\(ident(f.name)).count == \(f.count), \"\(f.name) holds \(f.count) values\")\n"
            s += "            self.\(ident(f.name)) = \(ident(f.name)).map { \(convert(f.type, "$0")) }\n"
        } else {
            s += "            self.\(ident(f.name)) = \(convert(f.type, ident(f.name)))\n"
        }
    }
    s += "        }\n"
    let words = i.push.map { f in f.count > 1 ? "\(ident(f.name))\(f.type == "uint" ? "" : ".map { \(word(f.type, "$0")) }")" : "[\(word(f.type, ident(f.name)))]" }
    s += "        public var words: [UInt32] { \(words.isEmpty ? "[]" : words.joined(separator: " + ")) }\n"
    s += "    }\n"
    return s + renderSpec(i, shared: sharedSpec) + "}\n"
}

func renderSpec(_ i: Interface, shared: String?) -> String {
    if let shared { return "    /// The same specialization constants as \(shared)'s.\n    public typealias Spec = \(shared).Spec\n" }
    var s = "    public struct Spec: ShaderSpec {\n"
    func swiftType(_ t: String) -> String { ["bool": "Bool", "float": "Float", "int": "Int32"][t] ?? "UInt32" }
    for c in i.specs { s += "        public var \(ident(c.name)): \(swiftType(c.type))   // constant_id \(c.id)\n" }
    let specParams = i.specs.map { c in c.name == "localSizeX" ? "localSizeX: UInt32" : "\(c.name): \(swiftType(c.type)) = \(swiftValue(c))" }
    s += "        public init(\(specParams.joined(separator: ", "))) {\n"
    for c in i.specs { s += "            self.\(ident(c.name)) = \(ident(c.name))\n" }
    s += "        }\n"
    let values = i.specs.map { c -> String in
        switch c.type {
        case "bool": return "\(ident(c.name)) ? 1 : 0"
        case "float": return "\(ident(c.name)).bitPattern"
        case "int": return "UInt32(bitPattern: \(ident(c.name)))"
        default: return ident(c.name)
        }
    }
    s += "        public var values: [UInt32] { [\(values.joined(separator: ", "))] }\n"
    s += "    }\n"
    return s
}

func sharedConstants(_ shaders: String) throws -> [(String, UInt32)] {
    var out: [(String, UInt32)] = []
    let files = try FileManager.default.contentsOfDirectory(atPath: shaders).filter { $0.hasSuffix(".glsl") }.sorted()
    for f in files {
        let text = try String(contentsOfFile: shaders + "/" + f, encoding: .utf8)
        for m in matches(#"(?m)^\s*const\s+uint\s+([A-Z][A-Z0-9_]*)\s*=\s*(\d+)u\s*;"#, in: text) {
            out.append((m[1], UInt32(m[2])!))
        }
    }
    return out
}

do {
    let (glslc, shaders, output, builds) = try parseArguments()
    var bySource: [String: [(Build, Interface, [Int: TexelRule])]] = [:]
    for b in builds {
        let text = try preprocess(b, glslc: glslc, shaders: shaders)
        let i = try interface(of: text, b)
        bySource[b.source, default: []].append((b, i, try texelRules(of: text, b, i)))
    }
    var text = "// Generated at build time by ShaderInterfaceGenerator from Shaders/ (do not edit; edit the GLSL).\nimport VulkanCompute\n\n"
    text += "/// Codes shared by GLSL (`const uint` in Shaders/*.glsl) and Swift enums.\npublic enum ShaderConstants {\n"
    for (name, value) in try sharedConstants(shaders) { text += "    public static let \(name): UInt32 = \(value)\n" }
    text += "}\n\n"
    var names: [String] = []
    var pushOwners: [[Field]: (kernel: String, specs: [SpecConstant])] = [:]
    // Cooperative-matrix sources last: they are built only with the pinned compiler, so the
    // shared GEMM block's owner does not depend on it.
    for source in bySource.keys.sorted(by: { a, b in a.hasPrefix("coopmat/") == b.hasPrefix("coopmat/") ? a < b : !a.hasPrefix("coopmat/") }) {
        let group = bySource[source]!
        // Builds of one source share a face; only which bindings are texel views may differ (the
        // texel twin's `-DTEXEL`): they are compared without that.
        func untexeled(_ i: Interface) -> Interface { var j = i; j.texel = []; return j }
        let first = group[0].1
        for (b, i, _) in group.dropFirst() where untexeled(i) != untexeled(first) {
            throw GeneratorError("\(b.output) (\(source) with \(b.defines.joined(separator: " "))) has another interface than \(group[0].0.output); give it its own source or keep push constants, constants and bindings the same")
        }
        let kernel = "\(typeName(source))Kernel"
        let owner = first.push.isEmpty ? nil : pushOwners[first.push]
        if owner == nil && !first.push.isEmpty { pushOwners[first.push] = (kernel, first.specs) }
        // Constants are shared only along with the push block (twins of one body).
        let specOwner = owner.flatMap { $0.specs == first.specs ? $0.kernel : nil }
        text += render(source, group.map(\.0.output), first, texelSets: group.map(\.1.texel), texel: group.map(\.2),
                       sharedPush: owner?.kernel, sharedSpec: specOwner) + "\n"
        names.append("\(kernel).self")
    }
    text += "/// Every kernel type, for tests that dispatch each module once.\npublic let allShaderKernels: [any ShaderKernel.Type] = [\(names.joined(separator: ", "))]\n"
    let url = URL(fileURLWithPath: output)
    if (try? String(contentsOf: url, encoding: .utf8)) != text { try text.write(to: url, atomically: true, encoding: .utf8) }
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(1)
}
