// TEMPORARY: a small exact AUROC/AUPRC for the per-epoch tuning evaluation. To be replaced
// at merge by the Evaluate layer's implementation (same definitions, FORMATS.md "Metrics").

/// Area under the ROC curve, ties counted as half (scikit-learn `roc_auc_score`); nil when
/// one class is absent.
func tuningAUROC(scores: [Double], labels: [Bool]) -> Double? {
  let pos = labels.filter { $0 }.count, neg = labels.count - pos
  guard pos > 0, neg > 0 else { return nil }
  let order = scores.indices.sorted { scores[$0] < scores[$1] }
  // Mann-Whitney: sum of the positives' mid-ranks.
  var rankSum = 0.0, i = 0
  while i < order.count {
    var j = i
    while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
    let midRank = Double(i + j + 2) / 2
    for k in i...j where labels[order[k]] { rankSum += midRank }
    i = j + 1
  }
  return (rankSum - Double(pos) * Double(pos + 1) / 2) / (Double(pos) * Double(neg))
}

/// Average precision, the step-wise `sum_n (R_n - R_{n-1}) P_n` over distinct thresholds
/// (scikit-learn `average_precision_score`); nil when there is no positive.
func tuningAUPRC(scores: [Double], labels: [Bool]) -> Double? {
  let pos = labels.filter { $0 }.count
  guard pos > 0 else { return nil }
  let order = scores.indices.sorted { scores[$0] > scores[$1] }
  var tp = 0, fp = 0, ap = 0.0, lastRecall = 0.0, i = 0
  while i < order.count {
    var j = i
    while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
    for k in i...j { if labels[order[k]] { tp += 1 } else { fp += 1 } }
    let recall = Double(tp) / Double(pos), precision = Double(tp) / Double(tp + fp)
    ap += (recall - lastRecall) * precision
    lastRecall = recall
    i = j + 1
  }
  return ap
}
