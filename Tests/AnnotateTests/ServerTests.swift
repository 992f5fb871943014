import Annotate
import Common
import Foundation
import GRDB
import TestSupport
import XCTest

final class ServerTests: XCTestCase {
  static let reports = [("r1", "No pneumothorax. Old left rib fracture."), ("r2", "Small apical pneumothorax."),
                        ("r3", "Possible tiny pneumothorax; cannot exclude."), ("r4", "Clear lungs.")]

  func testEveryRouteNeedsASession() throws {
    let f = try Fixture.make("cxr-annotate-routes", reports: Self.reports)
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let server = try ServerProcess(f.db, for: Self.self)
    let table = AnnotateServer.routeTable
    XCTAssertEqual(table.filter { $0.access == .open }.map { "\($0.method) \($0.path)" },
                   ["GET /login", "POST /login", "GET /static/app.js", "GET /static/app.css", "GET /favicon.ico"])
    XCTAssertEqual(table.count, 18)
    let anon = Client(port: server.port)
    for r in table where r.access != .open {
      let path = r.path.replacingOccurrences(of: ":id", with: "1")
      let reply = r.method == "GET" ? try anon.get(path) : try anon.post(path, ["finding": "Pneumothorax", "value": "present"], csrf: "x")
      if r.method == "GET" {
        XCTAssertEqual(reply.status, 303, path)
        XCTAssertEqual(reply.header("Location"), "/login", path)
      } else {
        XCTAssertEqual(reply.status, 401, "\(r.method) \(path)")
      }
    }
    for path in ["/login", "/static/app.js", "/static/app.css"] { XCTAssertEqual(try anon.get(path).status, 200, path) }
    XCTAssertEqual(try anon.get("/favicon.ico").status, 204)
    XCTAssertEqual(try anon.get("/static/app.js").header("Content-Type"), "text/javascript; charset=utf-8")
    // A forged session cookie is no session.
    anon.cookies["cxr_session"] = String(repeating: "ab", count: 32)
    XCTAssertEqual(try anon.get("/items").status, 303)
    // Roles: an annotator is kept out of adjudication and admin pages, an adjudicator out of items.
    let alice = Client(port: server.port)
    XCTAssertEqual(try alice.login("alice", Fixture.password).status, 303)
    XCTAssertEqual(try alice.get("/adjudicate").status, 403)
    XCTAssertEqual(try alice.get("/admin/audit.csv").status, 403)
    let carol = Client(port: server.port)
    try carol.login("carol", Fixture.password)
    XCTAssertEqual(try carol.get("/items").status, 403)
    XCTAssertEqual(try carol.get("/adjudicate").status, 200)
    let root = Client(port: server.port)
    try root.login("root", Fixture.password)
    let audit = try root.get("/admin/audit.csv")
    XCTAssertEqual(audit.status, 200)
    XCTAssertTrue(audit.body.hasPrefix("at,user,action,target,old,new\n"), audit.body)
    // The session cookie's attributes, and the headers every page carries.
    let login = Client(port: server.port)
    let page = try login.get("/login")
    XCTAssertEqual(page.header("Content-Security-Policy"),
                   "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    let token = String(page.body[page.body.range(of: "name=\"csrf\" value=\"")!.upperBound...].prefix { $0 != "\"" })
    let signed = try login.post("/login", ["name": "alice", "password": Fixture.password], csrf: .some(token), json: false)
    let cookie = try XCTUnwrap(signed.all("Set-Cookie").first { $0.hasPrefix("cxr_session=") })
    XCTAssertTrue(cookie.contains("HttpOnly"), cookie)
    XCTAssertTrue(cookie.contains("SameSite=Strict"), cookie)
    XCTAssertFalse(cookie.contains("Secure"), cookie)  // plain HTTP on loopback
    // Logout ends the session on the server, not only in the browser.
    let sessionValue = login.cookies["cxr_session"]!
    try login.get("/items")
    XCTAssertEqual(try login.post("/logout", [:], json: false).status, 303)
    login.cookies["cxr_session"] = sessionValue
    XCTAssertEqual(try login.get("/items").status, 303)
    XCTAssertEqual(server.stop(), 0)
    XCTAssertTrue(server.process.stderr.contains("cxr annotate: stopped; \(f.db) closed"), server.process.stderr)
  }

  func testCSRFMissingOrWrongChangesNothing() throws {
    let f = try Fixture.make("cxr-annotate-csrf", reports: Self.reports)
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let server = try ServerProcess(f.db, for: Self.self)
    defer { _ = server.stop() }
    let alice = Client(port: server.port)
    try alice.login("alice", Fixture.password)
    let item = try f.assignment("alice", report: "r1")
    try alice.get("/item/\(item)")
    XCTAssertEqual(alice.csrf.count, 64)
    let answer = ["finding": "Pneumothorax", "value": "present"]
    let missing = try alice.post("/item/\(item)/answer", answer, csrf: .some(nil))
    XCTAssertEqual(missing.status, 403)
    XCTAssertEqual(missing.body, "{\"error\":\"the CSRF token is missing or wrong; reload the page and try again\"}")
    // A token one character off (never the real one: the first character is always changed).
    let wrong = (alice.csrf.first == "0" ? "1" : "0") + alice.csrf.dropFirst()
    XCTAssertEqual(try alice.post("/item/\(item)/answer", answer, csrf: wrong).status, 403)
    XCTAssertEqual(try alice.post("/item/\(item)/note", ["note": "x"], csrf: .some(nil)).status, 403)
    XCTAssertEqual(try alice.post("/logout", [:], csrf: "wrong").status, 403)
    // Another user's token is wrong too.
    let bob = Client(port: server.port)
    try bob.login("bob", Fixture.password)
    XCTAssertEqual(try alice.post("/item/\(item)/answer", answer, csrf: bob.csrf).status, 403)
    let carol = Client(port: server.port)
    try carol.login("carol", Fixture.password)
    XCTAssertEqual(try carol.post("/adjudicate/\(try f.reportKey("r1"))", ["finding": "Pneumothorax", "value": "present"], csrf: .some(nil)).status, 403)
    // A login form without its cookie's token is refused.
    let stranger = Client(port: server.port)
    XCTAssertEqual(try stranger.post("/login", ["name": "alice", "password": Fixture.password], csrf: "guess", json: false).status, 403)
    XCTAssertEqual(try f.sql("SELECT COUNT(*) FROM answer", Int.self), [0])
    XCTAssertEqual(try f.sql("SELECT COUNT(*) FROM adjudication", Int.self), [0])
    XCTAssertEqual(try f.sql("SELECT COUNT(*) FROM assignment WHERE note != ''", Int.self), [0])
    XCTAssertEqual(try f.sql("SELECT COUNT(*) FROM audit WHERE action IN ('answer', 'note', 'adjudicate', 'logout')", Int.self), [0])
    // The right token works.
    let ok = try alice.post("/item/\(item)/answer", answer)
    XCTAssertEqual(ok.status, 200)
    XCTAssertEqual(ok.body, "{\"assigned\":4,\"done\":0,\"saved\":true}")
    XCTAssertEqual(try f.sql("SELECT value FROM answer"), ["present"])
  }

  func testBlinding() throws {
    let f = try Fixture.make("cxr-annotate-blind", reports: Self.reports)
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let server = try ServerProcess(f.db, for: Self.self)
    defer { _ = server.stop() }
    let alice = Client(port: server.port), bob = Client(port: server.port)
    try alice.login("alice", Fixture.password)
    try bob.login("bob", Fixture.password)
    let bobs = try f.assignment("bob", report: "r2"), alices = try f.assignment("alice", report: "r2")
    try bob.get("/item/\(bobs)")
    XCTAssertEqual(try bob.post("/item/\(bobs)/answer", ["finding": "Pneumothorax", "value": "uncertain"]).status, 200)
    XCTAssertEqual(try bob.post("/item/\(bobs)/note", ["note": "BOB-PRIVATE-NOTE"]).status, 200)
    try alice.get("/items")
    for path in ["/item/\(bobs)", "/api/item/\(bobs)"] {
      let r = try alice.get(path, json: path.hasPrefix("/api"))
      XCTAssertEqual(r.status, 404, path)
      XCTAssertFalse(r.body.contains("BOB-PRIVATE-NOTE"))
    }
    XCTAssertEqual(try alice.post("/item/\(bobs)/answer", ["finding": "Pneumothorax", "value": "absent"]).status, 404)
    XCTAssertEqual(try alice.post("/item/\(bobs)/note", ["note": "overwrite"]).status, 404)
    XCTAssertEqual(try alice.get("/item/999999").status, 404)
    // Alice's own item of the same report shows nothing of Bob's.
    let mine = try alice.get("/item/\(alices)")
    XCTAssertEqual(mine.status, 200)
    XCTAssertFalse(mine.body.contains("BOB-PRIVATE-NOTE"))
    XCTAssertFalse(mine.body.contains("aria-pressed=\"true\""))
    XCTAssertFalse(mine.body.contains("bob"))
    let api = try alice.get("/api/item/\(alices)", json: true)
    XCTAssertEqual(api.body, "{\"answers\":{},\"note\":\"\",\"report\":\"r2\"}")
    XCTAssertFalse(try alice.get("/items").body.contains("bob"))
    XCTAssertEqual(try f.sql("SELECT value FROM answer"), ["uncertain"])
    XCTAssertEqual(try f.sql("SELECT note FROM assignment WHERE note != ''"), ["BOB-PRIVATE-NOTE"])
  }

  func testHostileTextIsShownEscapedAndStoredAsGiven() throws {
    let hostile = "<script>alert(\"x\")</script> O'Brien's \"film\" & co; DROP TABLE report;-- ' OR '1'='1"
    let name = "<b>eve\"'</b>; DELETE FROM user;--"
    let f = try Fixture.make("cxr-annotate-escape", reports: [("<img src=x onerror=alert(1)>", hostile), ("r2", "plain")],
                             annotators: [name, "bob"], users: [(name, .annotator), ("bob", .annotator), ("carol", .adjudicator)])
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let server = try ServerProcess(f.db, for: Self.self)
    defer { _ = server.stop() }
    let eve = Client(port: server.port)
    XCTAssertEqual(try eve.login(name, Fixture.password).status, 303)
    let item = try f.assignment(name, report: "<img src=x onerror=alert(1)>")
    let page = try eve.get("/item/\(item)")
    XCTAssertEqual(page.status, 200)
    XCTAssertFalse(page.body.contains("<script>alert"))
    XCTAssertFalse(page.body.contains("<img src=x"))
    XCTAssertFalse(page.body.contains("<b>eve"))
    XCTAssertTrue(page.body.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; O&#39;Brien&#39;s &quot;film&quot; &amp; co; DROP TABLE report;-- &#39; OR &#39;1&#39;=&#39;1"), page.body)
    XCTAssertTrue(page.body.contains("&lt;b&gt;eve&quot;&#39;&lt;/b&gt;; DELETE FROM user;--"))
    XCTAssertTrue(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"))
    XCTAssertEqual(try eve.post("/item/\(item)/note", ["note": hostile]).status, 200)
    XCTAssertEqual(try eve.post("/item/\(item)/answer", ["finding": "Pneumothorax", "value": "present"]).status, 200)
    let again = try eve.get("/item/\(item)")
    XCTAssertTrue(again.body.contains(">&lt;script&gt;alert(&quot;x&quot;)"))
    XCTAssertFalse(again.body.contains("<script>alert"))
    // Stored exactly as given; the tables are all there.
    XCTAssertEqual(try f.sql("SELECT text FROM report WHERE external_id = '<img src=x onerror=alert(1)>'"), [hostile])
    XCTAssertEqual(try f.sql("SELECT note FROM assignment WHERE note != ''"), [hostile])
    XCTAssertEqual(try f.sql("SELECT name FROM user ORDER BY id"), [name, "bob", "carol"])
    XCTAssertEqual(try f.sql("SELECT COUNT(*) FROM report", Int.self), [2])
    // The adjudicator's page escapes names and text too.
    let bob = Client(port: server.port)
    try bob.login("bob", Fixture.password)
    let bobs = try f.assignment("bob", report: "<img src=x onerror=alert(1)>")
    try bob.get("/item/\(bobs)")
    XCTAssertEqual(try bob.post("/item/\(bobs)/answer", ["finding": "Pneumothorax", "value": "absent"]).status, 200)
    let carol = Client(port: server.port)
    try carol.login("carol", Fixture.password)
    let adj = try carol.get("/adjudicate/\(try f.reportKey("<img src=x onerror=alert(1)>"))")
    XCTAssertEqual(adj.status, 200)
    XCTAssertFalse(adj.body.contains("<script>alert") || adj.body.contains("<b>eve") || adj.body.contains("<img src=x"))
    XCTAssertTrue(adj.body.contains("<th>&lt;b&gt;eve&quot;&#39;&lt;/b&gt;; DELETE FROM user;--</th>"))
    let list = try carol.get("/adjudicate")
    XCTAssertTrue(list.body.contains(">&lt;img src=x onerror=alert(1)&gt;</a>"), list.body)
  }

  func testLoginRateLimitAndSessionExpiry() throws {
    let f = try Fixture.make("cxr-annotate-limit", reports: Self.reports)
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let server = try ServerProcess(f.db, for: Self.self, extra: ["--session-minutes", "0.05", "--login-limit", "3"])
    defer { _ = server.stop() }
    let c = Client(port: server.port)
    for _ in 0..<3 {
      let r = try c.login("alice", "wrong password!")
      XCTAssertEqual(r.status, 401)
      XCTAssertTrue(r.body.contains("Wrong name or password."))
    }
    let refused = try c.login("alice", Fixture.password)
    XCTAssertEqual(refused.status, 429)
    XCTAssertNotNil(refused.header("Retry-After"))
    XCTAssertNil(c.cookies["cxr_session"])
    XCTAssertEqual(try f.sql("SELECT action FROM audit WHERE action LIKE 'login%' ORDER BY id"),
                   ["login_failed", "login_failed", "login_failed", "login_refused"])
    // Another name from the same address is refused as well (3 failures from 127.0.0.1).
    XCTAssertEqual(try Client(port: server.port).login("bob", Fixture.password).status, 429)
    // A fresh server (limits live in memory) with a 3-second session.
    XCTAssertEqual(server.stop(), 0)
    let s2 = try ServerProcess(f.db, for: Self.self, extra: ["--session-minutes", "0.05"])
    defer { _ = s2.stop() }
    let bob = Client(port: s2.port)
    XCTAssertEqual(try bob.login("bob", Fixture.password).status, 303)
    XCTAssertEqual(try bob.get("/items").status, 200)
    Thread.sleep(forTimeInterval: 3.5)
    let expired = try bob.get("/items")
    XCTAssertEqual(expired.status, 303)
    XCTAssertEqual(expired.header("Location"), "/login")
  }

  /// kill -9 between answers: every answer the server confirmed is there after a restart, and
  /// the database passes integrity_check. Answers keep coming from a second thread while the
  /// kill lands, so one may be in flight.
  func testKill9KeepsEveryConfirmedAnswer() throws {
    let reports = (0..<30).map { ("k\($0)", "Report \($0).") }
    let f = try Fixture.make("cxr-annotate-kill", reports: reports)
    defer { try? FileManager.default.removeItem(at: f.dir) }
    var confirmed: [(Int64, String, String)] = []
    var inFlight: [(Int64, String, String)] = []  // sent when the kill landed: may or may not be in
    var ids: [String: Int64] = [:]
    for (rid, _) in reports { ids[rid] = try f.assignment("alice", report: rid) }
    let values = ["present", "absent", "uncertain"]
    for round in 0..<2 {
      let server = try ServerProcess(f.db, for: Self.self)
      let alice = Client(port: server.port)
      try alice.login("alice", Fixture.password)
      try alice.get("/items")
      let tally = Tally()
      let stop = Date().addingTimeInterval(Double(round) * 0.4 + 0.8)
      let ids = ids
      let worker = Thread {
        var k = 0
        while true {
          let rid = "k\(k % 30)", finding = k % 2 == 0 ? "Pneumothorax" : "Fracture", value = values[(k / 2 + round) % 3]
          guard let id = ids[rid] else { break }
          tally.attempt((id, finding, value))
          guard let r = try? alice.post("/item/\(id)/answer", ["finding": finding, "value": value]) else { break }
          if r.status == 200 { tally.add((id, finding, value)) }
          k += 1
        }
        tally.finish()
      }
      worker.start()
      while Date() < stop { usleep(10_000) }
      server.process.signal(SIGKILL)
      let status = server.process.wait(timeout: 10)
      XCTAssertNotNil(status)
      XCTAssertNotEqual(status, 0)
      XCTAssertTrue(tally.waitFinished(timeout: 20))
      let mine = tally.confirmed
      confirmed += mine
      if let a = tally.lastAttempt, !(mine.last.map { $0 == a } ?? false) { inFlight.append(a) }
      XCTAssertGreaterThan(mine.count, 5)
    }
    // The last confirmed value of each (item, finding) is what the database holds.
    var expected: [String: String] = [:]
    for (id, finding, value) in confirmed { expected["\(id) \(finding)"] = value }
    let p = try Project.open(f.db)
    let (integrity, stored) = try p.pool.read { db in
      (try String.fetchAll(db, sql: "PRAGMA integrity_check"),
       Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT assignment_id, finding, value FROM answer").map {
        ("\($0["assignment_id"] as Int64) \($0["finding"] as String)", $0["value"] as String) }))
    }
    try p.close()
    XCTAssertEqual(integrity, ["ok"])
    for (key, value) in expected {
      let maybe = inFlight.filter { "\($0.0) \($0.1)" == key }.map(\.2)
      XCTAssertTrue(stored[key] == value || maybe.contains(stored[key] ?? ""), "\(key): stored \(stored[key] ?? "nothing"), confirmed \(value)")
    }
    XCTAssertLessThanOrEqual(inFlight.count, 2)
  }

  /// Answers through the HTTP API, adjudication, export, then `cxr agree` on the export with
  /// exact counts; no report text reaches the server log.
  func testExportFeedsCxrAgree() throws {
    let f = try Fixture.make("cxr-annotate-agree", reports: Self.reports)
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let server = try ServerProcess(f.db, for: Self.self)
    let alice = Client(port: server.port), bob = Client(port: server.port), carol = Client(port: server.port)
    try alice.login("alice", Fixture.password); try bob.login("bob", Fixture.password); try carol.login("carol", Fixture.password)
    // (Pneumothorax, Fracture) per report for alice and bob.
    let readings: [String: [(String, String)]] = [
      "r1": [("present", "absent"), ("present", "absent")],
      "r2": [("absent", "absent"), ("present", "absent")],      // Pneumothorax disagreement
      "r3": [("uncertain", "present"), ("uncertain", "present")], // both uncertain: to adjudicate
      "r4": [("absent", "absent"), ("absent", "present")],      // Fracture disagreement, left open
    ]
    try alice.get("/items"); try bob.get("/items")
    for (rid, pair) in readings {
      for (client, name, answer) in [(alice, "alice", pair[0]), (bob, "bob", pair[1])] {
        let id = try f.assignment(name, report: rid)
        XCTAssertEqual(try client.post("/item/\(id)/answer", ["finding": "Pneumothorax", "value": answer.0]).status, 200)
        XCTAssertEqual(try client.post("/item/\(id)/answer", ["finding": "Fracture", "value": answer.1]).status, 200)
      }
    }
    try carol.get("/adjudicate")
    let page = try carol.get("/adjudicate")
    XCTAssertTrue(page.body.contains("Pneumothorax: 2 to adjudicate, 0 decided"), page.body)
    XCTAssertTrue(page.body.contains("Fracture: 1 to adjudicate, 0 decided"))
    XCTAssertTrue(page.body.contains("<td class=\"raw\">0.750 (3/4)</td>"), page.body)
    // Pneumothorax, reader 1 by reader 2: whichever of alice/bob is reader 1 per report, the
    // pairs are (p,p) (a,p)|(p,a) (u,u) (a,a).
    let counts = page.body.components(separatedBy: "<table class=\"counts\" data-finding=\"Pneumothorax\">")[1].components(separatedBy: "</table>")[0]
    let cells = counts.components(separatedBy: "<td>").dropFirst().map { Int($0.prefix { $0.isNumber })! }
    XCTAssertEqual(cells.count, 9)
    XCTAssertEqual([cells[0], cells[4], cells[8]], [1, 1, 1])  // diagonal: present, absent, uncertain
    XCTAssertEqual(cells[1] + cells[3], 1)                     // the one present/absent disagreement
    XCTAssertEqual(cells.reduce(0, +), 4)
    XCTAssertEqual(try carol.post("/adjudicate/\(try f.reportKey("r2"))", ["finding": "Pneumothorax", "value": "present"]).status, 200)
    XCTAssertEqual(try carol.post("/adjudicate/\(try f.reportKey("r3"))", ["finding": "Pneumothorax", "value": "equivocal"]).status, 200)
    XCTAssertEqual(try carol.post("/adjudicate/\(try f.reportKey("r3"))", ["finding": "Pneumothorax", "value": "maybe"]).status, 400)
    XCTAssertTrue(try carol.get("/adjudicate").body.contains("Pneumothorax: 2 to adjudicate, 2 decided"))
    XCTAssertEqual(server.stop(), 0)
    // The trigger-kept progress counts equal a count from scratch.
    XCTAssertEqual(try f.sql("SELECT annotator || ' ' || assigned || ' ' || done FROM annotator_progress ORDER BY annotator"), ["alice 4 4", "bob 4 4"])
    XCTAssertEqual(try f.sql("""
      SELECT annotator || ' ' || COUNT(*) || ' ' || SUM((SELECT COUNT(*) FROM answer WHERE assignment_id = assignment.id) = 2)
      FROM assignment GROUP BY annotator ORDER BY annotator
      """), ["alice 4 4", "bob 4 4"])
    for (_, text) in Self.reports { XCTAssertFalse(server.process.stderr.contains(text), "report text in the log") }
    XCTAssertTrue(server.process.stderr.contains("POST /item/"), server.process.stderr)
    try Self.checkExportAndAgree(f, readings: readings)
  }

  static func checkExportAndAgree(_ f: Fixture, readings: [String: [(String, String)]]) throws {
    let out = f.dir.appendingPathComponent("human.csv")
    let e = try CXRBinary.run(["annotate", "export", f.db, "--out", out.path], for: Self.self)
    XCTAssertEqual(e.status, 0, e.err)
    XCTAssertTrue(e.out.contains("Pneumothorax: 2 agreed, 1 adjudicated, 1 equivocal, 0 open (blank)"), e.out)
    XCTAssertTrue(e.out.contains("Fracture: 3 agreed, 0 adjudicated, 0 equivocal, 1 open (blank)"), e.out)
    let table = try CSVTable.read(out)
    XCTAssertEqual(table.header, ["id", "Pneumothorax", "Fracture", "Pneumothorax_r1", "Pneumothorax_r2", "Fracture_r1", "Fracture_r2", "reader1", "reader2"])
    var rows: [String: [String]] = [:]
    for r in table.rows { rows[r[0]] = r }
    XCTAssertEqual(rows["r1"]![1...2], ["1", "0"])
    XCTAssertEqual(rows["r2"]![1...2], ["1", "0"])
    XCTAssertEqual(rows["r3"]![1...2], ["equivocal", "1"])
    XCTAssertEqual(rows["r4"]![1...2], ["0", ""])
    for (rid, row) in rows {
      let first = row[7] == "alice" ? 0 : 1
      XCTAssertEqual(Set([row[7], row[8]]), ["alice", "bob"])
      let cell = ["present": "1", "absent": "0", "uncertain": "uncertain"]
      XCTAssertEqual([row[3], row[4]], [cell[readings[rid]![first].0]!, cell[readings[rid]![1 - first].0]!])
      XCTAssertEqual([row[5], row[6]], [cell[readings[rid]![first].1]!, cell[readings[rid]![1 - first].1]!])
    }
    // A labeller's labels: r1 (1,0) r2 (0,0) r3 (1,1) r4 (0,1).
    let schema = f.dir.appendingPathComponent("schema.csv")
    try "id,Pneumothorax,Fracture\nr1,1,0\nr2,0,0\nr3,1,1\nr4,0,1\n".write(to: schema, atomically: true, encoding: .utf8)
    let dir = f.dir.appendingPathComponent("agree")
    let a = try CXRBinary.run(["agree", "--human", out.path, "--schema", "chexpert=\(schema.path)", "--annotators", "{finding}_r1,{finding}_r2",
                               "--bootstrap", "0", "--out", dir.path], for: Self.self)
    XCTAssertEqual(a.status, 0, a.err)
    // Pneumothorax: r1 TP, r2 FN, r3 equivocal (left out), r4 TN. Fracture: r1 TN, r2 TN, r3 TP, r4 open (left out).
    XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("confusion.csv"), encoding: .utf8),
                   "schema,finding,tp,fp,fn,tn,left_out\nchexpert,Pneumothorax,1,0,1,1,1\nchexpert,Fracture,1,0,0,2,1\n")
    let ac1 = try CSVTable.read(dir.appendingPathComponent("agreement.csv")).rows.filter { $0[0] == "annotators" }
    // Binary AC1 leaves out r3 (uncertain) for Pneumothorax; the 3-category one keeps it.
    XCTAssertEqual(ac1.map { "\($0[1]) \($0[2]) n=\($0[6])" },
                   ["Pneumothorax gwet_ac1 n=3", "Pneumothorax gwet_ac1_3cat n=4", "Fracture gwet_ac1 n=4", "Fracture gwet_ac1_3cat n=4"])
  }

  /// Resume: /annotate goes to the first item not fully answered; the list shows what is done.
  func testResumeWhereYouLeftOff() throws {
    let f = try Fixture.make("cxr-annotate-resume", reports: Self.reports)
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let server = try ServerProcess(f.db, for: Self.self)
    defer { _ = server.stop() }
    let alice = Client(port: server.port)
    try alice.login("alice", Fixture.password)
    let order = try f.sql("SELECT assignment.id FROM assignment WHERE annotator = 'alice' ORDER BY position", Int64.self)
    XCTAssertEqual(try alice.get("/annotate").header("Location"), "/item/\(order[0])")
    try alice.get("/item/\(order[0])")
    for finding in ["Pneumothorax", "Fracture"] {
      XCTAssertEqual(try alice.post("/item/\(order[0])/answer", ["finding": finding, "value": "absent"]).status, 200)
    }
    // Half of the second item.
    XCTAssertEqual(try alice.post("/item/\(order[1])/answer", ["finding": "Fracture", "value": "present"]).status, 200)
    let again = Client(port: server.port)
    try again.login("alice", Fixture.password)
    XCTAssertEqual(try again.get("/annotate").header("Location"), "/item/\(order[1])")
    let page = try again.get("/item/\(order[1])")
    XCTAssertTrue(page.body.contains("<span id=\"progress\">1 / 4 done</span>"), page.body)
    XCTAssertTrue(page.body.contains("value=\"present\" data-key=\"p\" aria-pressed=\"true\""))
    XCTAssertTrue(page.body.contains("<a id=\"prev\" href=\"/item/\(order[0])\">"))
    XCTAssertTrue(page.body.contains("<a id=\"next\" href=\"/item/\(order[2])\">"))
    let list = try again.get("/items").body
    XCTAssertEqual(list.components(separatedBy: "<tr class=\"done\">").count - 1, 1)
    XCTAssertEqual(list.components(separatedBy: "<tr class=\"open\">").count - 1, 3)
  }

  /// With --tls-cert/--tls-key the server speaks HTTPS and the session cookie is Secure; bound
  /// beyond loopback without TLS it warns.
  func testTLSAndExposureWarning() throws {
    let f = try Fixture.make("cxr-annotate-tls", reports: Self.reports)
    defer { try? FileManager.default.removeItem(at: f.dir) }
    let cert = f.dir.appendingPathComponent("cert.pem").path, key = f.dir.appendingPathComponent("key.pem").path
    let ssl = Process()
    ssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    ssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1", "-keyout", key, "-out", cert]
    ssl.standardError = FileHandle.nullDevice
    try ssl.run(); ssl.waitUntilExit()
    XCTAssertEqual(ssl.terminationStatus, 0)
    let server = try ServerProcess(f.db, for: Self.self, extra: ["--tls-cert", cert, "--tls-key", key], scheme: "https")
    defer { _ = server.stop() }
    let out = try Python.json("""
      import http.client, json, ssl, sys
      ctx = ssl.create_default_context(cafile=sys.argv[2])
      ctx.check_hostname = False
      c = http.client.HTTPSConnection('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=10)
      c.request('GET', '/login')
      r = c.getresponse(); body = r.read().decode()
      print(json.dumps({'status': r.status, 'cookies': r.headers.get_all('Set-Cookie'), 'form': 'name="password"' in body}))
      """, args: ["\(server.port)", cert]) as! [String: Any]
    XCTAssertEqual(out["status"] as? Int, 200)
    XCTAssertEqual(out["form"] as? Bool, true)
    let cookie = try XCTUnwrap((out["cookies"] as? [String])?.first)
    XCTAssertTrue(cookie.hasPrefix("cxr_login=") && cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), cookie)
    // Plain HTTP to the TLS port gets nothing.
    XCTAssertThrowsError(try HTTP.request(port: server.port, method: "GET", path: "/login", timeout: 3))
    // Exposed without TLS: a warning (the server is stopped at once).
    let open = try WatchedProcess(try CXRBinary.url(for: Self.self), ["annotate", "serve", f.db, "--host", "0.0.0.0", "--port", "0"])
    XCTAssertTrue(open.waitForStderr(timeout: 30) { $0.contains("cxr annotate: serving") })
    open.signal(SIGTERM)
    XCTAssertEqual(open.wait(timeout: 15), 0)
    XCTAssertTrue(open.stderr.contains("warning: serving on 0.0.0.0 without --tls-cert/--tls-key: passwords and patient reports cross the network unencrypted"), open.stderr)
    let half = try CXRBinary.run(["annotate", "serve", f.db, "--tls-cert", cert], for: Self.self)
    XCTAssertEqual(half.status, 1)
    XCTAssertTrue(half.err.contains("give both --tls-cert and --tls-key, or neither"), half.err)
  }
}

extension ServerTests {
  /// SIGTERM while answers keep coming: the server finishes what it has, exits 0, and every
  /// answer it confirmed is stored.
  func testSIGTERMIsGracefulUnderLoad() throws {
    let reports = (0..<10).map { ("g\($0)", "Report \($0).") }
    let f = try Fixture.make("cxr-annotate-term", reports: reports)
    defer { try? FileManager.default.removeItem(at: f.dir) }
    var assigned: [String: Int64] = [:]
    for (rid, _) in reports { assigned[rid] = try f.assignment("alice", report: rid) }
    let ids = assigned  // the worker thread reads a constant
    let server = try ServerProcess(f.db, for: Self.self)
    let alice = Client(port: server.port)
    try alice.login("alice", Fixture.password)
    try alice.get("/items")
    let tally = Tally()
    let values = ["present", "absent", "uncertain"]
    let worker = Thread {
      var k = 0
      while k < 100_000 {
        let id = ids["g\(k % 10)"]!, finding = k % 2 == 0 ? "Pneumothorax" : "Fracture", value = values[(k / 20) % 3]
        guard let r = try? alice.post("/item/\(id)/answer", ["finding": finding, "value": value]) else { break }
        if r.status == 200 { tally.add((id, finding, value)) } else { break }
        k += 1
      }
      tally.finish()
    }
    worker.start()
    usleep(600_000)
    XCTAssertEqual(server.stop(), 0)
    XCTAssertTrue(tally.waitFinished(timeout: 20))
    XCTAssertTrue(server.process.stderr.contains("cxr annotate: stopped"), server.process.stderr)
    var expected: [String: String] = [:]
    for (id, finding, value) in tally.confirmed { expected["\(id) \(finding)"] = value }
    XCTAssertGreaterThan(tally.confirmed.count, 5)
    let stored = Dictionary(uniqueKeysWithValues: try f.sql("SELECT assignment_id || ' ' || finding || '=' || value FROM answer").map {
      (String($0.split(separator: "=")[0]), String($0.split(separator: "=")[1])) })
    XCTAssertEqual(stored, expected)
    XCTAssertEqual(try f.sql("PRAGMA integrity_check"), ["ok"])
  }
}

/// Answers a worker thread had confirmed, read by the test thread.
final class Tally: @unchecked Sendable {
  private let lock = NSCondition()
  private var items: [(Int64, String, String)] = []
  private var done = false
  private var attempted: (Int64, String, String)?
  func add(_ x: (Int64, String, String)) { lock.lock(); items.append(x); lock.unlock() }
  func attempt(_ x: (Int64, String, String)) { lock.lock(); attempted = x; lock.unlock() }
  var lastAttempt: (Int64, String, String)? { lock.lock(); defer { lock.unlock() }; return attempted }
  func finish() { lock.lock(); done = true; lock.broadcast(); lock.unlock() }
  func waitFinished(timeout: Double) -> Bool {
    lock.lock(); defer { lock.unlock() }
    let end = Date().addingTimeInterval(timeout)
    while !done { if !lock.wait(until: end) { return done } }
    return true
  }
  var confirmed: [(Int64, String, String)] { lock.lock(); defer { lock.unlock() }; return items }
}
