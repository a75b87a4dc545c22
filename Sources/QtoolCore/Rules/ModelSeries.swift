/// What `model("name")` reads: a model's prediction on each of the bars given (a probability
/// for a binary label), NaN where it has none — a bar whose features are not warmed up, or
/// one the model may not be asked about (in its training data). The engine supplies one per
/// model a strategy names; the rules evaluator asks it for the bars it runs on.
public protocol ModelSeries: Sendable {
  func predictions(for bars: BarSeries) -> [Double]
}
