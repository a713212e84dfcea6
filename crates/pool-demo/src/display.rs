//! The live display: one status line per pool, redrawn in place on a terminal.

use std::io::{IsTerminal as _, Write as _};

/// The live display: lines redrawn in place on a terminal, printed every few ticks otherwise.
pub(crate) struct Display {
    lines: usize,
    drawn: bool,
    terminal: bool,
    ticks: u64,
}

impl Display {
    pub(crate) fn new(lines: usize) -> Self {
        Self {
            lines,
            drawn: false,
            terminal: std::io::stdout().is_terminal(),
            ticks: 0,
        }
    }

    pub(crate) fn show(&mut self, lines: &[String]) {
        self.ticks += 1;
        let mut out = std::io::stdout().lock();
        if self.terminal {
            if self.drawn {
                let _ = write!(out, "\x1b[{}A", self.lines);
            }
            for line in lines {
                let _ = writeln!(out, "\x1b[2K    {line}");
            }
            self.drawn = true;
        } else if self.ticks % 4 == 1 {
            for line in lines {
                let _ = writeln!(out, "    {line}");
            }
        }
        let _ = out.flush();
    }

    pub(crate) fn note(&mut self, text: &str) {
        // A note goes above the live lines, which are drawn again below it.
        self.drawn = false;
        println!("\n==> {text}");
    }
}
