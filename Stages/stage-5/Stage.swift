/// This stage's number and name: the one place they are written, so that a
/// diff with the next stage does not show every line that says which stage it is.
enum ThisStage {
    static let number = 5
    static let name = "stage-\(number)"
}
