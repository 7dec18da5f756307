//! A buffered file writer whose `write(2)` calls run on their own thread.
//!
//! `convert` turns 100 MB of X12 into about 1.4 GB of FHIR JSON. Profiling it
//! (`perf record`, see the README's benchmark table) showed the kernel's copy into the
//! page cache taking over a third of the run on one core while the conversion waited.
//! Handing full buffers to a writer thread lets that copy run on the second core,
//! beside the conversion, instead of after it.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

/// One buffer's size: big writes for the kernel, small next to the output.
pub const BUFFER: usize = 1 << 20;
/// Full buffers waiting for `write(2)`; past this the converting side waits.
const IN_FLIGHT: usize = 2;

pub struct BackgroundWriter {
    buffer: Vec<u8>,
    full: Option<SyncSender<Vec<u8>>>,
    /// Written buffers coming back for reuse, one for every buffer sent.
    written: Receiver<Vec<u8>>,
    outstanding: usize,
    thread: Option<JoinHandle<io::Result<File>>>,
}

impl BackgroundWriter {
    pub fn new(file: File) -> Self {
        let (full, to_write) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, written) = channel::<Vec<u8>>();
        let thread = std::thread::spawn(move || write_all_buffers(file, &to_write, &give_back));
        Self {
            buffer: Vec::with_capacity(BUFFER),
            full: Some(full),
            written,
            outstanding: 0,
            thread: Some(thread),
        }
    }

    /// Writes everything, waits for the thread and returns the file, or the first
    /// write error.
    pub fn finish(mut self) -> io::Result<File> {
        self.flush()?;
        self.full = None;
        self.join()
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let next = match self.written.try_recv() {
            Ok(spare) => {
                self.outstanding -= 1;
                spare
            }
            Err(_) => Vec::with_capacity(BUFFER),
        };
        let full = std::mem::replace(&mut self.buffer, next);
        match self.full.as_ref().map(|sender| sender.send(full)) {
            Some(Ok(())) => {
                self.outstanding += 1;
                Ok(())
            }
            // The thread stops early only on a write error: report it.
            _ => Err(self.stopped()),
        }
    }

    /// The error that stopped the thread.
    fn stopped(&mut self) -> io::Error {
        self.full = None;
        match self.join() {
            Err(e) => e,
            Ok(_) => io::Error::other("the writer thread stopped early"),
        }
    }

    fn join(&mut self) -> io::Result<File> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the writer thread panicked")),
            None => Err(io::Error::other("the writer has already stopped")),
        }
    }
}

fn write_all_buffers(
    mut file: File,
    to_write: &Receiver<Vec<u8>>,
    give_back: &Sender<Vec<u8>>,
) -> io::Result<File> {
    for mut buffer in to_write {
        file.write_all(&buffer)?;
        buffer.clear();
        // The writer may be gone (dropped without `finish`); the buffer is only freed.
        let _ = give_back.send(buffer);
    }
    Ok(file)
}

impl Write for BackgroundWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + bytes.len() > BUFFER {
            self.send_buffer()?;
        }
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    /// Returns once every byte written so far is in the file (or its write failed).
    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()?;
        while self.outstanding > 0 {
            match self.written.recv() {
                Ok(_) => self.outstanding -= 1,
                Err(_) => return Err(self.stopped()),
            }
        }
        Ok(())
    }
}
