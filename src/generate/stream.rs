//! Turning a growing list of tokens into text that is safe to show: never a
//! broken UTF-8 character (byte-level BPE can split one across tokens), never
//! the start of what may turn out to be a stop sequence, and the text cut at
//! the first stop sequence, even one that spans several tokens.

/// Tracks what has been shown of a generation's decoded text.
#[derive(Debug, Clone)]
pub struct TextStream {
    stop: Vec<String>,
    shown: usize,
}

/// What to show after the latest token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// More text (possibly empty) to show; the generation goes on.
    More(String),
    /// The last text to show: a stop sequence was found (and is left out).
    Stopped {
        /// Text to show before the stop sequence.
        piece: String,
        /// Where the stop sequence begins in the decoded text.
        at: usize,
    },
}

impl TextStream {
    /// A stream that stops at any of `stop` (empty strings are ignored).
    pub fn new(stop: &[String]) -> Self {
        Self {
            stop: stop.iter().filter(|s| !s.is_empty()).cloned().collect(),
            shown: 0,
        }
    }

    /// Given the whole decoded text so far, what may be shown now.
    pub fn update(&mut self, text: &str) -> Update {
        if let Some(at) = self.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            let piece = text.get(self.shown..at).unwrap_or_default().to_string();
            self.shown = at;
            return Update::Stopped { piece, at };
        }
        let mut safe = text.len() - self.held_back(text);
        if text[..safe].ends_with('\u{FFFD}') {
            // Maybe a character whose remaining bytes are still to come.
            safe -= '\u{FFFD}'.len_utf8();
        }
        if safe <= self.shown {
            return Update::More(String::new());
        }
        let piece = text[self.shown..safe].to_string();
        self.shown = safe;
        Update::More(piece)
    }

    /// The rest of the text once generation ended without a stop sequence.
    pub fn finish(&mut self, text: &str) -> String {
        let piece = text.get(self.shown..).unwrap_or_default().to_string();
        self.shown = text.len();
        piece
    }

    /// Length of the longest end of `text` that begins some stop sequence.
    fn held_back(&self, text: &str) -> usize {
        self.stop
            .iter()
            .flat_map(|s| {
                (1..s.len())
                    .rev()
                    .filter(|&n| s.is_char_boundary(n))
                    .map(move |n| &s[..n])
            })
            .filter(|prefix| text.ends_with(prefix))
            .map(str::len)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stop: &[&str], pieces: &[&str]) -> (Vec<String>, bool) {
        let stop: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
        let mut stream = TextStream::new(&stop);
        let mut text = String::new();
        let mut shown = Vec::new();
        for piece in pieces {
            text.push_str(piece);
            match stream.update(&text) {
                Update::More(s) => shown.push(s),
                Update::Stopped { piece: s, .. } => {
                    shown.push(s);
                    return (shown, true);
                }
            }
        }
        shown.push(stream.finish(&text));
        (shown, false)
    }

    #[test]
    fn a_stop_sequence_split_across_tokens_is_found_and_never_shown() {
        let (shown, stopped) = run(&["\n\n"], &["Hello", " world", "\n", "\nmore"]);
        assert!(stopped);
        assert_eq!(shown.concat(), "Hello world");
        assert_eq!(
            shown[2], "",
            "a lone newline might start the stop sequence: held back"
        );
    }

    #[test]
    fn held_back_text_is_released_when_it_does_not_stop() {
        let (shown, stopped) = run(&["END"], &["The E", "ND", "x"]);
        assert!(stopped);
        assert_eq!(shown.concat(), "The ");
        let (shown, stopped) = run(&["END"], &["The E", "arth"]);
        assert!(!stopped);
        assert_eq!(shown, vec!["The ", "Earth", ""]);
    }

    #[test]
    fn half_characters_wait_for_their_other_bytes() {
        let (shown, _) = run(&[], &["a\u{FFFD}", "\u{FFFD}"]);
        assert_eq!(shown[0], "a");
    }
}
