import Annotate
import Common
import Foundation
import TestSupport
import XCTest

/// A real browser: headless Chromium driven by Selenium (venv python), keyboard only for the
/// annotating; then export and `cxr agree` with exact counts.
final class BrowserTests: XCTestCase {
  static let script = """
    import json, signal, sys, tempfile, time
    def _timeout(*_):
        raise TimeoutError('browser test ran past its 170 s budget')
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(170)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    base, password, plan, blocked = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    keymap = {'present': 'p', 'absent': 'a', 'uncertain': 'u', 'equivocal': 'e'}
    opts = webdriver.ChromeOptions()
    opts.binary_location = '/usr/bin/chromium'
    for a in ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--window-size=1200,900',
              '--user-data-dir=' + tempfile.mkdtemp(prefix='cxr-chromium-'), '--no-first-run', '--disable-extensions']:
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
    out = {}
    try:
        d.set_page_load_timeout(20)
        d.set_script_timeout(20)
        w = WebDriverWait(d, 15)
        def keys(s):
            ActionChains(d).send_keys(s).perform()
        def pressed():
            res = {}
            for f in d.find_elements(By.CSS_SELECTOR, 'form.answer'):
                b = f.find_elements(By.CSS_SELECTOR, 'button[aria-pressed="true"]')
                res[f.get_attribute('data-finding')] = b[0].get_attribute('value') if b else None
            return res
        def answer(finding, value):
            keys(keymap[value])
            w.until(lambda d: pressed().get(finding) == value and d.find_element(By.ID, 'status').text == 'saved')
        def login(name):
            d.get(base + '/login')
            d.find_element(By.ID, 'name').send_keys(name)
            d.find_element(By.ID, 'password').send_keys(password + Keys.ENTER)
            w.until(lambda d: '/login' not in d.current_url)
        def logout():
            d.find_element(By.CSS_SELECTOR, 'form.logout button').click()
            w.until(lambda d: d.current_url.endswith('/login'))
        def annotate(name, reload_after):
            seen = []
            for i in range(len(plan[name])):
                w.until(lambda d: d.find_elements(By.ID, 'report-id'))
                rid = d.find_element(By.ID, 'report-id').text
                seen.append(rid)
                out.setdefault(name + '_fresh', []).append(pressed())
                ptx, fx = plan[name][rid]
                answer('Pneumothorax', ptx)
                answer('Fracture', fx)
                if name == 'alice' and i == 0:
                    keys('m'); keys('ALICE-PRIVATE-NOTE'); keys(Keys.ESCAPE)
                    w.until(lambda d: d.find_element(By.ID, 'status').text == 'saved')
                if i + 1 == reload_after:
                    d.refresh()
                    w.until(lambda d: d.find_elements(By.ID, 'report-id'))
                    out[name + '_after_reload'] = [d.find_element(By.ID, 'report-id').text, pressed(),
                                                   d.find_element(By.ID, 'progress').text]
                keys('n')
                w.until(lambda d: not d.find_elements(By.ID, 'report-id') or d.find_element(By.ID, 'report-id').text != rid)
            out[name + '_order'] = seen
        login('alice')
        annotate('alice', 3)
        logout()
        login('bob')
        out['bob_sees_alice_note'] = 'ALICE-PRIVATE-NOTE' in d.page_source
        annotate('bob', 0)
        for path in blocked:
            d.get(base + path)
            out.setdefault('bob_blocked', []).append('no such item' in d.page_source and 'ALICE-PRIVATE-NOTE' not in d.page_source)
        logout()
        login('carol')
        out['carol_list'] = d.find_element(By.TAG_NAME, 'main').text
        for key, value in plan['carol']:
            d.get(base + '/adjudicate/' + str(key))
            answer('Pneumothorax', value)
        d.get(base + '/adjudicate')
        out['carol_after'] = d.find_element(By.TAG_NAME, 'main').text
        # Every resource came from the app (CSP default-src 'self'), and no script or load failed.
        out['console_errors'] = [e['message'] for e in d.get_log('browser') if e['level'] == 'SEVERE']
        out['resources'] = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        out['ok'] = True
    finally:
        d.quit()
    print(json.dumps(out))
    """

  func testKeyboardAnnotationAdjudicationExportAgree() throws {
    let fm = FileManager.default
    guard fm.isExecutableFile(atPath: "/usr/bin/chromium"), fm.isExecutableFile(atPath: "/usr/bin/chromedriver") else {
      throw XCTSkip("chromium and chromedriver are not installed (Debian packages chromium, chromium-driver; scripts/setup.sh installs them)")
    }
    let python = try XCTUnwrap(TestEnv.python, "reference Python not found: run scripts/setup.sh")
    let f = try Fixture.make("cxr-annotate-browser", reports: ServerTests.reports)
    defer { try? fm.removeItem(at: f.dir) }
    let readings: [String: [(String, String)]] = [
      "r1": [("present", "absent"), ("present", "absent")],
      "r2": [("absent", "absent"), ("present", "absent")],
      "r3": [("uncertain", "present"), ("uncertain", "present")],
      "r4": [("absent", "absent"), ("absent", "present")],
    ]
    var plan: [String: Any] = [:]
    for (k, name) in ["alice", "bob"].enumerated() {
      plan[name] = Dictionary(uniqueKeysWithValues: readings.map { ($0.key, [$0.value[k].0, $0.value[k].1]) })
    }
    plan["carol"] = [[try f.reportKey("r2"), "present"], [try f.reportKey("r3"), "equivocal"]]
    let blocked = try ["r1", "r2"].map { "/item/\(try f.assignment("alice", report: $0))" }
    func json(_ o: Any) throws -> String { String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self) }

    let server = try ServerProcess(f.db, for: Self.self)
    let dir = try TestEnv.scratch("cxr-selenium")
    defer { try? fm.removeItem(at: dir) }
    let file = dir.appendingPathComponent("browser.py")
    try Self.script.write(to: file, atomically: true, encoding: .utf8)
    let py = try WatchedProcess(python, [file.path, "http://127.0.0.1:\(server.port)", Fixture.password, try json(plan), try json(blocked)])
    let status = py.wait(timeout: 180)
    XCTAssertEqual(server.stop(), 0)
    XCTAssertEqual(status, 0, "selenium script failed or timed out:\n\(py.stderr.suffix(4000))")
    let last = py.stdout.split(separator: "\n").last.map(String.init) ?? ""
    let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], py.stdout)
    XCTAssertEqual(out["ok"] as? Bool, true)
    // The only failed loads are the two items of alice's that bob was refused (404).
    XCTAssertEqual(out["console_errors"] as? [String],
                   blocked.map { "http://127.0.0.1:\(server.port)\($0) - Failed to load resource: the server responded with a status of 404 (Not Found)" })
    let resources = try XCTUnwrap(out["resources"] as? [String])
    XCTAssertTrue(resources.allSatisfy { $0.hasPrefix("http://127.0.0.1:\(server.port)/") }, "\(resources)")
    // Nothing was pressed before each first visit (no one else's answers show), for both readers.
    for name in ["alice", "bob"] {
      let fresh = try XCTUnwrap(out["\(name)_fresh"] as? [[String: Any]])
      XCTAssertEqual(fresh.count, 4)
      for p in fresh { XCTAssertTrue(p.values.allSatisfy { $0 is NSNull }, "\(name): \(p)") }
      XCTAssertEqual(Set(try XCTUnwrap(out["\(name)_order"] as? [String])), ["r1", "r2", "r3", "r4"])
    }
    // After the reload the third report still shows its two answers, progress 3 / 4.
    let reload = try XCTUnwrap(out["alice_after_reload"] as? [Any])
    let rid = try XCTUnwrap(reload[0] as? String)
    XCTAssertEqual(reload[1] as? [String: String], ["Pneumothorax": readings[rid]![0].0, "Fracture": readings[rid]![0].1])
    XCTAssertEqual(reload[2] as? String, "3 / 4 done")
    XCTAssertEqual(out["bob_sees_alice_note"] as? Bool, false)
    XCTAssertEqual(out["bob_blocked"] as? [Bool], [true, true])
    let before = try XCTUnwrap(out["carol_list"] as? String), after = try XCTUnwrap(out["carol_after"] as? String)
    XCTAssertTrue(before.contains("Pneumothorax: 2 to adjudicate, 0 decided"), before)
    XCTAssertTrue(after.contains("Pneumothorax: 2 to adjudicate, 2 decided"), after)
    XCTAssertEqual(try f.sql("SELECT note FROM assignment WHERE note != ''"), ["ALICE-PRIVATE-NOTE"])
    try ServerTests.checkExportAndAgree(f, readings: readings)
  }
}
