import Common
import Evaluate
import Foundation

/// Server-rendered pages. Plain Swift rather than templates: every piece of user or report text
/// goes through `esc` (the one place that escapes), pages are type-checked at compile time, and
/// there is no template directory to ship or to find at run time.
enum Pages {
  /// HTML-escapes text for element content and quoted attribute values.
  static func esc(_ s: String) -> String { HTMLText.escape(s) }

  static func layout(title: String, user: SessionUser?, bodyData: [String: String] = [:], _ content: String) -> String {
    let data = bodyData.sorted { $0.key < $1.key }.map { " data-\($0.key)=\"\(esc($0.value))\"" }.joined()
    var nav = ""
    if let user {
      nav = """
        <header><span class="who">\(esc(user.name)) (\(esc(user.role.rawValue)))</span>
        <nav>\(links(for: user.role))</nav>
        <form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="\(esc(user.csrf))"><button type="submit">Log out</button></form></header>
        """
    }
    return """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
      <title>\(esc(title))</title><link rel="stylesheet" href="/static/app.css"></head>
      <body\(data)>\(nav)<main>
      \(content)
      </main><script src="/static/app.js"></script></body></html>
      """
  }

  static func links(for role: Project.Role) -> String {
    switch role {
    case .annotator: return "<a href=\"/annotate\">Continue</a> <a href=\"/items\">My items</a>"
    case .adjudicator: return "<a href=\"/adjudicate\">Adjudication</a>"
    case .admin: return "<a href=\"/admin\">Progress</a> <a href=\"/admin/audit.csv\">Audit log</a>"
    }
  }

  static func login(token: String, message: String?) -> String {
    layout(title: "Sign in — cxr annotate", user: nil, """
      <h1>cxr annotate</h1>
      \(message.map { "<p class=\"error\" id=\"message\">\(esc($0))</p>" } ?? "")
      <form method="post" action="/login" class="login">
      <input type="hidden" name="csrf" value="\(esc(token))">
      <label>Name <input name="name" id="name" autocomplete="username" required autofocus></label>
      <label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
      <button type="submit" id="login">Sign in</button>
      </form>
      """)
  }

  static func answerForm(action: String, finding: String, index: Int, chosen: String?, csrf: String,
                         choices: [(value: String, label: String, key: String)]) -> String {
    var s = "<form method=\"post\" action=\"\(esc(action))\" class=\"answer\" data-finding=\"\(esc(finding))\" data-index=\"\(index)\">"
    s += "<input type=\"hidden\" name=\"csrf\" value=\"\(esc(csrf))\"><input type=\"hidden\" name=\"finding\" value=\"\(esc(finding))\">"
    s += "<span class=\"finding\">\(index + 1). \(esc(finding))</span>"
    for c in choices {
      let pressed = chosen == c.value ? "true" : "false"
      s += " <button type=\"submit\" name=\"value\" value=\"\(c.value)\" data-key=\"\(c.key)\" aria-pressed=\"\(pressed)\">\(esc(c.label)) <kbd>\(c.key)</kbd></button>"
    }
    return s + "</form>"
  }

  static let readerChoices = [("present", "present", "p"), ("absent", "absent", "a"), ("uncertain", "uncertain", "u")]
  static let finalChoices = [("present", "present", "p"), ("absent", "absent", "a"), ("equivocal", "equivocal", "e")]

  static func item(_ item: Item, findings: [String], progress: Progress, previous: Int64?, next: Int64?, user: SessionUser) -> String {
    var s = "<div class=\"bar\"><span id=\"progress\">\(progress.done) / \(progress.assigned) done</span>"
    s += " <span id=\"position\">item \(item.position + 1)</span> <span id=\"status\" class=\"idle\" role=\"status\">\(item.answers.isEmpty ? "" : "saved")</span></div>"
    s += "<h1>Report <span id=\"report-id\">\(esc(item.reportID))</span></h1>"
    s += "<div class=\"report\" id=\"report\">\(esc(item.text))</div>"
    s += "<section class=\"answers\">"
    for (i, f) in findings.enumerated() {
      s += answerForm(action: "/item/\(item.assignmentID)/answer", finding: f, index: i, chosen: item.answers[f], csrf: user.csrf,
                      choices: readerChoices)
    }
    s += "</section>"
    s += """
      <form method="post" action="/item/\(item.assignmentID)/note" class="note"><input type="hidden" name="csrf" value="\(esc(user.csrf))">
      <label>Note <kbd>m</kbd><textarea name="note" id="note" rows="2">\(esc(item.note))</textarea></label><button type="submit">Save note</button></form>
      """
    s += "<p class=\"move\">"
    s += previous.map { "<a id=\"prev\" href=\"/item/\($0)\">← previous <kbd>b</kbd></a>" } ?? ""
    s += " "
    s += next.map { "<a id=\"next\" href=\"/item/\($0)\">next <kbd>n</kbd> →</a>" } ?? "<a id=\"next\" href=\"/items\">all items <kbd>n</kbd></a>"
    s += "</p><p class=\"help\">Keys: <kbd>p</kbd> present, <kbd>a</kbd> absent, <kbd>u</kbd> uncertain (then the next finding); <kbd>j</kbd>/<kbd>k</kbd> or <kbd>↓</kbd>/<kbd>↑</kbd> move between findings, <kbd>1</kbd>–<kbd>9</kbd> pick one; <kbd>n</kbd>/<kbd>→</kbd> next report, <kbd>b</kbd>/<kbd>←</kbd> previous; <kbd>m</kbd> note, <kbd>Esc</kbd> leaves it.</p>"
    return layout(title: "Report \(item.reportID)", user: user, bodyData: ["csrf": user.csrf, "page": "item"], s)
  }

  static func items(_ list: [(id: Int64, position: Int, reportID: String, answered: Int)], findings: Int, progress: Progress, user: SessionUser) -> String {
    var s = "<h1>My items</h1><p id=\"progress\">\(progress.done) / \(progress.assigned) done</p><table id=\"items\"><tr><th>#</th><th>report</th><th>answered</th></tr>"
    for i in list {
      s += "<tr class=\"\(i.answered == findings ? "done" : "open")\"><td>\(i.position + 1)</td><td><a href=\"/item/\(i.id)\">\(esc(i.reportID))</a></td><td>\(i.answered) / \(findings)</td></tr>"
    }
    return layout(title: "My items", user: user, bodyData: ["csrf": user.csrf], s + "</table>")
  }

  static func fmt(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "n/a" }
  static func ci(_ e: Estimate) -> String {
    guard let lo = e.ciLow, let hi = e.ciHigh else { return "" }
    return " (\(fmt(lo))–\(fmt(hi)))"
  }

  static func adjudication(_ pairs: [Project.Pairing], agreement: [(finding: String, agreement: ReaderAgreement)], rounds: Int, user: SessionUser) -> String {
    var s = "<h1>Adjudication</h1><h2>Agreement so far</h2>"
    s += "<table id=\"agreement\"><tr><th>finding</th><th>n (both read)</th><th>raw agreement</th><th>Gwet's AC1, 3 categories</th><th>Gwet's AC1, binary (uncertain left out)</th><th>Cohen's kappa, 3 categories</th></tr>"
    for (f, a) in agreement {
      s += "<tr data-finding=\"\(esc(f))\"><td>\(esc(f))</td><td class=\"n\">\(a.n)</td><td class=\"raw\">\(fmt(a.rawAgreement)) (\(a.agreements)/\(a.n))</td>"
      s += "<td class=\"ac1\">\(fmt(a.ac1ThreeCategory.value))\(ci(a.ac1ThreeCategory))</td>"
      s += "<td class=\"ac1-binary\">\(fmt(a.ac1Binary.value))\(ci(a.ac1Binary)) n=\(a.nBinary)</td>"
      s += "<td class=\"kappa\">\(fmt(a.kappa.value))\(ci(a.kappa))</td></tr>"
    }
    s += "</table><p class=\"help\">95 % percentile bootstrap CIs from \(rounds) rounds over the reports both readers answered.</p>"
    // Counts: reader 1 (rows) by reader 2 (columns).
    for (f, a) in agreement {
      s += "<table class=\"counts\" data-finding=\"\(esc(f))\"><caption>\(esc(f)): reader 1 (rows) by reader 2</caption><tr><th></th>"
      s += ReaderAnswer.allCases.map { "<th>\($0.name)</th>" }.joined() + "</tr>"
      for x in ReaderAnswer.allCases {
        s += "<tr><th>\(x.name)</th>" + ReaderAnswer.allCases.map { "<td>\(a.counts[x.rawValue][$0.rawValue])</td>" }.joined() + "</tr>"
      }
      s += "</table>"
    }
    for (f, _) in agreement {
      let open = pairs.filter { $0.finding == f && $0.needsAdjudication }
      let decided = open.filter { $0.adjudicated != nil }.count
      s += "<h2>\(esc(f)): \(open.count) to adjudicate, \(decided) decided</h2><table class=\"cases\" data-finding=\"\(esc(f))\"><tr><th>report</th><th>reader 1</th><th>reader 2</th><th>final</th></tr>"
      for p in open {
        s += "<tr><td><a href=\"/adjudicate/\(p.reportKey)\">\(esc(p.reportID))</a></td><td>\(esc(p.first))</td><td>\(esc(p.second))</td><td>\(esc(p.adjudicated ?? "open"))</td></tr>"
      }
      s += "</table>"
    }
    return layout(title: "Adjudication", user: user, bodyData: ["csrf": user.csrf], s)
  }

  static func adjudicationCase(_ c: Project.Case, findings: [String], next: Int64?, user: SessionUser) -> String {
    var s = "<div class=\"bar\"><span id=\"status\" class=\"idle\" role=\"status\"></span></div>"
    s += "<h1>Report <span id=\"report-id\">\(esc(c.reportID))</span></h1><div class=\"report\" id=\"report\">\(esc(c.text))</div>"
    s += "<table class=\"readers\"><tr><th>finding</th>" + c.readers.map { "<th>\(esc($0))</th>" }.joined() + "</tr>"
    for f in findings {
      s += "<tr><td>\(esc(f))</td>" + (c.answers[f] ?? []).map { "<td>\(esc($0 ?? "not yet"))</td>" }.joined() + "</tr>"
    }
    s += "<tr><td>note</td>" + c.notes.map { "<td>\(esc($0))</td>" }.joined() + "</tr></table><section class=\"answers\">"
    for (i, f) in findings.enumerated() {
      s += answerForm(action: "/adjudicate/\(c.reportKey)", finding: f, index: i, chosen: c.adjudicated[f], csrf: user.csrf, choices: finalChoices)
    }
    s += "</section><p class=\"move\"><a href=\"/adjudicate\">back to the list</a> "
    s += next.map { "<a id=\"next\" href=\"/adjudicate/\($0)\">next to adjudicate <kbd>n</kbd> →</a>" } ?? ""
    s += "</p><p class=\"help\">Keys: <kbd>p</kbd> present, <kbd>a</kbd> absent, <kbd>e</kbd> equivocal; <kbd>j</kbd>/<kbd>k</kbd> move between findings.</p>"
    return layout(title: "Adjudicate \(c.reportID)", user: user, bodyData: ["csrf": user.csrf, "page": "adjudicate"], s)
  }

  static func admin(_ progress: [(String, Progress)], user: SessionUser) -> String {
    var s = "<h1>Progress</h1><table id=\"progress\"><tr><th>annotator</th><th>done</th><th>assigned</th></tr>"
    for (name, p) in progress { s += "<tr><td>\(esc(name))</td><td>\(p.done)</td><td>\(p.assigned)</td></tr>" }
    s += "</table><p><a href=\"/admin/audit.csv\">Download the audit log (CSV)</a></p>"
    return layout(title: "Progress", user: user, bodyData: ["csrf": user.csrf], s)
  }

  static func message(_ title: String, _ text: String, user: SessionUser?) -> String {
    layout(title: title, user: user, "<h1>\(esc(title))</h1><p id=\"message\">\(esc(text))</p>")
  }

  static let css = """
    body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}
    header{display:flex;gap:1.5em;align-items:center;padding:.5em 1.5em;background:#223;color:#fff}header a{color:#cde}
    header .logout{margin-left:auto}main{max-width:60em;margin:1.5em auto;padding:0 1.5em}
    .report{white-space:pre-wrap;font-size:1.3rem;line-height:1.6;background:#fff;border:1px solid #ccc;padding:1em 1.2em;max-height:55vh;overflow:auto}
    .answers form{display:flex;gap:.6em;align-items:center;margin:.6em 0;padding:.4em;border-radius:6px}
    .answers form.selected{outline:3px solid #48f}.finding{min-width:12em;font-weight:600;font-size:1.1rem}
    button{font-size:1rem;padding:.35em .8em;border:1px solid #888;border-radius:5px;background:#fff;cursor:pointer}
    button[aria-pressed=true]{background:#246;color:#fff;border-color:#246}kbd{font-size:.8em;opacity:.7}
    .bar{display:flex;gap:1.5em;font-size:1.05rem}#status.saved{color:#080}#status.saving{color:#a60}#status.error{color:#c00;font-weight:700}
    table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:.25em .6em}.error{color:#c00}
    .help{color:#555;font-size:.9em}textarea{width:100%;font-size:1rem}label{display:block;margin:.4em 0}
    """

  /// The only script: answers and notes are posted as they are given, keys for every choice.
  static let js = """
    (function () {
      'use strict';
      var csrf = document.body.dataset.csrf || '';
      var status = document.getElementById('status');
      var pending = 0, failed = false, goAfter = null;
      function show(text, cls) { if (status) { status.textContent = text; status.className = cls; } }
      function post(form, extra) {
        var data = new URLSearchParams(new FormData(form));
        if (extra) { for (var k in extra) data.set(k, extra[k]); }
        pending++; show('saving…', 'saving');
        return fetch(form.action, { method: 'POST', body: data, credentials: 'same-origin',
                                    headers: { 'Accept': 'application/json', 'X-CSRF-Token': csrf } })
          .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
          .then(function (j) {
            pending--; failed = false;
            if (j.done !== undefined) { var p = document.getElementById('progress'); if (p) p.textContent = j.done + ' / ' + j.assigned + ' done'; }
            if (pending === 0) { show('saved', 'saved'); if (goAfter) { var g = goAfter; goAfter = null; location.href = g; } }
            return j;
          })
          .catch(function (e) { pending--; failed = true; goAfter = null; show('NOT saved (' + e.message + ') — try again', 'error'); });
      }
      var rows = Array.prototype.slice.call(document.querySelectorAll('form.answer'));
      var current = 0;
      function select(i) {
        if (!rows.length) return;
        current = Math.max(0, Math.min(rows.length - 1, i));
        rows.forEach(function (f, k) { f.classList.toggle('selected', k === current); });
      }
      function choose(form, value) {
        form.querySelectorAll('button[name=value]').forEach(function (b) { b.setAttribute('aria-pressed', b.value === value ? 'true' : 'false'); });
        return post(form, { value: value });
      }
      rows.forEach(function (form, k) {
        form.addEventListener('submit', function (ev) {
          ev.preventDefault();
          var b = ev.submitter; if (b && b.value) { select(k); choose(form, b.value); }
        });
      });
      var first = rows.findIndex(function (f) { return !f.querySelector('button[aria-pressed=true]'); });
      select(first < 0 ? 0 : first);
      var note = document.getElementById('note');
      if (note) {
        var noteForm = note.form, saved = note.value;
        noteForm.addEventListener('submit', function (ev) { ev.preventDefault(); saved = note.value; post(noteForm); });
        note.addEventListener('change', function () { if (note.value !== saved) { saved = note.value; post(noteForm); } });
      }
      function go(id) {
        var a = document.getElementById(id); if (!a) return;
        if (pending > 0) goAfter = a.href; else location.href = a.href;
      }
      document.addEventListener('keydown', function (ev) {
        var t = ev.target.tagName;
        if (t === 'TEXTAREA' || t === 'INPUT') { if (ev.key === 'Escape') ev.target.blur(); return; }
        if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
        var k = ev.key;
        if (k === 'j' || k === 'ArrowDown') { select(current + 1); ev.preventDefault(); return; }
        if (k === 'k' || k === 'ArrowUp') { select(current - 1); ev.preventDefault(); return; }
        if (k >= '1' && k <= '9') { select(parseInt(k, 10) - 1); ev.preventDefault(); return; }
        if (k === 'n' || k === 'ArrowRight') { go('next'); ev.preventDefault(); return; }
        if (k === 'b' || k === 'ArrowLeft') { go('prev'); ev.preventDefault(); return; }
        if (k === 'm' && note) { note.focus(); ev.preventDefault(); return; }
        if (!rows.length) return;
        var b = rows[current].querySelector('button[data-key="' + k.toLowerCase() + '"]');
        if (b) { ev.preventDefault(); choose(rows[current], b.value); select(current + 1); }
      });
    })();
    """
}
