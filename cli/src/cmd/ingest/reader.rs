//! The streaming reader of `ingest`: JSON lines in, batches of orders out,
//! on a thread of its own, so that parsing the next batch overlaps the
//! evaluation and the store write of this one while memory holds a few
//! batches, never the file.
//!
//! A line that is not an order (bad JSON, a bad field, not UTF-8) does not
//! stop the stream: it travels with its batch as a [`BadLine`] naming the
//! line and the field, and the lines around it are ingested. A read error
//! ends the stream: the batch read so far is sent, then the error.

use std::io::BufRead;

use creatorflow::Order;
use tokio::sync::mpsc;

/// A line that is not an order.
#[derive(Debug)]
pub struct BadLine {
    /// 1-based line number in the input.
    pub line: u64,
    /// Why (the field and what is wrong with it).
    pub message: String,
}

/// What the reader sends: the orders of up to one batch, the bad lines
/// among them, and how far the input has been read.
#[derive(Debug, Default)]
pub struct Batch {
    /// The orders, in input order.
    pub orders: Vec<Order>,
    /// The bad lines read since the previous batch.
    pub bad: Vec<BadLine>,
    /// Bytes of input read so far.
    pub bytes: u64,
}

/// One message of the reader: a batch, or the read error that ended the
/// stream.
pub type Message = Result<Batch, String>;

/// How many batches may wait between the reader and the writer.
const AHEAD: usize = 1;

/// Starts reading `input` on a new thread, `batch` orders at a time;
/// `name` (the file, or `-`) goes into read errors. The stream ends when
/// the input does, after a read error, or when the receiver is dropped.
pub fn spawn(
    input: Box<dyn BufRead + Send>,
    name: String,
    batch: usize,
) -> (mpsc::Receiver<Message>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(AHEAD);
    let handle = std::thread::spawn(move || read(input, &name, batch, &tx));
    (rx, handle)
}

/// The reader thread's loop.
fn read(mut input: Box<dyn BufRead + Send>, name: &str, size: usize, tx: &mpsc::Sender<Message>) {
    let mut buf = Vec::with_capacity(1024);
    let mut batch = Batch {
        orders: Vec::with_capacity(size),
        ..Batch::default()
    };
    let mut line = 0u64;
    let mut bytes = 0u64;
    loop {
        buf.clear();
        let n = match input.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => {
                batch.bytes = bytes;
                let _ = tx.blocking_send(Ok(batch));
                let _ = tx.blocking_send(Err(format!("cannot read {name}: {e}")));
                return;
            }
        };
        if n == 0 {
            break;
        }
        line += 1;
        bytes += n as u64;
        match parse(&buf) {
            Ok(None) => {}
            Ok(Some(order)) => batch.orders.push(order),
            Err(message) => batch.bad.push(BadLine { line, message }),
        }
        if batch.orders.len() >= size {
            batch.bytes = bytes;
            let full = std::mem::replace(
                &mut batch,
                Batch {
                    orders: Vec::with_capacity(size),
                    ..Batch::default()
                },
            );
            if tx.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    batch.bytes = bytes;
    if !batch.orders.is_empty() || !batch.bad.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}

/// One line: an order, nothing (a blank line), or why it is not an order.
fn parse(raw: &[u8]) -> Result<Option<Order>, String> {
    let text = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    Order::from_json(text).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"tiktok_order_id":"1","customer_handle":"@a","product_name":"Lamp","product_id":"p1","quantity":1,"price":"2.00","created_at":"2025-06-12T10:00:00Z"}"#;

    fn all(text: Vec<u8>, size: usize) -> Vec<Message> {
        let (mut rx, handle) = spawn(Box::new(std::io::Cursor::new(text)), "f".into(), size);
        let mut out = Vec::new();
        while let Some(m) = rx.blocking_recv() {
            out.push(m);
        }
        handle.join().expect("reader thread");
        out
    }

    #[test]
    fn batches_name_bad_lines_and_count_bytes() {
        let mut text = Vec::new();
        for i in 0..5 {
            text.extend_from_slice(GOOD.replace("\"1\"", &format!("\"{i}\"")).as_bytes());
            text.push(b'\n');
            if i == 2 {
                text.extend_from_slice(b"\n{\"tiktok_order_id\":5}\n\xff\xfe\n");
            }
        }
        let len = text.len() as u64;
        let got = all(text, 2);
        let batches: Vec<Batch> = got.into_iter().map(|m| m.expect("no read error")).collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.orders.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let bad: Vec<(u64, &str)> = batches
            .iter()
            .flat_map(|b| b.bad.iter().map(|x| (x.line, x.message.as_str())))
            .collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(bad[0].0, 5);
        assert!(bad[0].1.contains("tiktok_order_id"), "{}", bad[0].1);
        assert_eq!(bad[1].0, 6);
        assert!(bad[1].1.starts_with("not UTF-8"), "{}", bad[1].1);
        assert_eq!(batches.last().map(|b| b.bytes), Some(len));
        let ids: Vec<String> = batches
            .iter()
            .flat_map(|b| b.orders.iter().map(|o| o.tiktok_order_id.clone()))
            .collect();
        assert_eq!(ids, ["0", "1", "2", "3", "4"]);
    }

    #[test]
    fn empty_input_sends_nothing() {
        assert!(all(Vec::new(), 10).is_empty());
        assert!(all(b"\n  \n".to_vec(), 10).is_empty());
    }
}
