//! Headless Chromium driven over the DevTools protocol, as a person uses a
//! page: it types into inputs and presses keys, clicks at an element's
//! place, and reads the page back. A minimal WebSocket client (RFC 6455,
//! text frames) over loopback; no dependency beyond the standard library
//! and serde_json.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The Chromium binary, if one is installed. Without it: a loud skip, or a
/// failure under CI (`CI=true`).
pub fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium is missing under CI (.ci/run installs it)");
        }
        eprintln!(
            "\n********************************************************************\n\
             SKIPPED: chromium not found; the dashboard was not rendered.\n\
             Install it (apt-get install -y chromium) to run this check.\n\
             ********************************************************************"
        );
    }
    found
}

/// A headless Chromium with one page attached; killed when dropped.
pub struct Browser {
    child: Child,
    ws: TcpStream,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts `chromium` headless and opens `url` in a new page.
    pub fn open(chromium: &str, url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromium");
        let (port, path) = active_port(profile.path());
        let ws = connect(port, &path);
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = b.send(None, "Target.createTarget", json!({ "url": url }));
        let id = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = b.send(
            None,
            "Target.attachToTarget",
            json!({ "targetId": id, "flatten": true }),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        b
    }

    /// Sends a command (to the page's session, or the browser's) and
    /// returns its result; events in between are skipped.
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        write_frame(&mut self.ws, msg.to_string().as_bytes());
        loop {
            let v: Value = serde_json::from_slice(&read_message(&mut self.ws)).expect("CDP JSON");
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// A command to the page.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    /// Evaluates `expression` in the page (promises awaited), by value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("`{expression}` threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy (its value returned), for at
    /// most `limit`; while the page loads it may throw (no body yet).
    pub fn wait(&mut self, expression: &str, limit: Duration) -> Value {
        let start = Instant::now();
        let guarded = format!(
            "(function () {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        );
        loop {
            let v = self.eval(&guarded);
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "waited {limit:?} for `{expression}`; the page: {}",
                self.eval("document.body ? document.body.innerText.slice(0, 2000) : ''")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks, as a mouse does, in the middle of the element `selector`.
    pub fn click(&mut self, selector: &str) {
        let rect = self.eval(&format!(
            "(function () {{ var e = document.querySelector({sel}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); var r = e.getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
            sel = json!(selector)
        ));
        let (x, y) = (rect[0].as_f64(), rect[1].as_f64());
        let (Some(x), Some(y)) = (x, y) else {
            panic!("nothing to click at `{selector}`");
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.page(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// Types `text` into the element `selector` (clicked first, as a
    /// person focuses a field).
    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector);
        self.page("Input.insertText", json!({ "text": text }));
    }

    /// Presses Enter.
    pub fn enter(&mut self) {
        for kind in ["keyDown", "keyUp"] {
            let mut p = json!({ "type": kind, "key": "Enter", "code": "Enter",
                                "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13 });
            if kind == "keyDown" {
                p["text"] = json!("\r");
            }
            self.page("Input.dispatchKeyEvent", p);
        }
    }
}

/// The DevTools port and browser path Chromium writes into its profile.
fn active_port(profile: &Path) -> (u16, String) {
    let file = profile.join("DevToolsActivePort");
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next())
                && let Ok(port) = port.trim().parse()
            {
                return (port, path.trim().to_owned());
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromium did not open its DevTools port"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens the WebSocket at `ws://127.0.0.1:PORT/PATH`.
fn connect(port: u16, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("handshake");
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let mut status = String::new();
    reader.read_line(&mut status).expect("handshake answer");
    assert!(status.contains(" 101 "), "DevTools refused: {status}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("handshake headers");
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    assert!(
        reader.buffer().is_empty(),
        "no frame arrives before the first command"
    );
    s
}

/// Sends one masked text frame (a client must mask).
fn write_frame(s: &mut TcpStream, payload: &[u8]) {
    let mask = [0x5a, 0x17, 0xc3, 0x88];
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).expect("send a frame");
}

/// Reads one whole message (continuation frames joined; pings skipped).
fn read_message(s: &mut TcpStream) -> Vec<u8> {
    let mut message = Vec::new();
    loop {
        let mut head = [0u8; 2];
        s.read_exact(&mut head).expect("a frame header");
        let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                s.read_exact(&mut b).expect("length");
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                s.read_exact(&mut b).expect("length");
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).expect("a frame that fits")];
        s.read_exact(&mut payload).expect("a frame payload");
        match opcode {
            0x8 => panic!("DevTools closed the connection"),
            0x9 | 0xa => continue,
            _ => message.extend_from_slice(&payload),
        }
        if fin {
            return message;
        }
    }
}
