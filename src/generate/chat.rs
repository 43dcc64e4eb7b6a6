//! A conversation kept as the model's context, in a plain chat template:
//!
//! ```text
//! User: first message
//! Assistant: first reply
//! User: second message
//! Assistant:
//! ```
//!
//! The model continues after the last `Assistant:`; its reply ends where it
//! starts a new `User:` line. When the conversation no longer fits the
//! model's context (leaving room for the reply), the oldest turns are
//! dropped.

use crate::tokenize::Tokenizer;
use crate::{Error, Result};

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation (a `System:` line).
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::System => "System",
            Role::User => "User",
            Role::Assistant => "Assistant",
        }
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Turn {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub text: String,
}

/// The stop sequence that ends a reply: the start of the next user line.
pub const REPLY_STOP: &str = "\nUser:";

/// A conversation.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    turns: Vec<Turn>,
}

impl Conversation {
    /// The turns so far, oldest first.
    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// Forgets every turn.
    pub fn reset(&mut self) {
        self.turns.clear();
    }

    /// Removes and returns the latest turn.
    pub fn pop(&mut self) -> Option<Turn> {
        self.turns.pop()
    }

    /// Adds a turn.
    pub fn push(&mut self, role: Role, text: &str) {
        self.turns.push(Turn {
            role,
            text: text.trim().to_string(),
        });
    }

    /// The template text of the turns from `first` on, ending with an open
    /// `Assistant:` line for the reply.
    fn render_from(&self, first: usize) -> String {
        let mut text = String::new();
        for turn in &self.turns[first..] {
            text.push_str(turn.role.label());
            text.push_str(": ");
            text.push_str(&turn.text);
            text.push('\n');
        }
        text.push_str("Assistant:");
        text
    }

    /// The prompt for the next reply: the whole conversation if its tokens
    /// and `reply_room` more fit in `context` tokens; otherwise the oldest
    /// turns are dropped (for good) until they do. Returns the prompt and the
    /// number of turns dropped.
    pub fn prompt(
        &mut self,
        tokenizer: &Tokenizer,
        context: usize,
        reply_room: usize,
    ) -> Result<(String, usize)> {
        let budget = context.saturating_sub(reply_room);
        for first in 0..self.turns.len() {
            let text = self.render_from(first);
            if tokenizer.encode(&text)?.len() <= budget {
                self.turns.drain(..first);
                return Ok((text, first));
            }
        }
        Err(Error::Invalid(format!(
            "the last message alone does not fit the model's context of {context} tokens with {reply_room} left for the reply; \
             send a shorter message or lower the reply length (/set max_tokens N)"
        )))
    }
}
