/// HTML-escapes text for element content and quoted attribute values: the one escaping function
/// of the HTML reports (Evaluate) and the annotation pages (Annotate).
public enum HTMLText {
  public static func escape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&#39;"
      default: out.append(ch)
      }
    }
    return out
  }
}
