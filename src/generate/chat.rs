//! A conversation kept as the model's context. An open model renders it
//! with its own chat template (the Jinja program its file carries); seer's
//! own models use a plain one:
//!
//! ```text
//! User: first message
//! Assistant: first reply
//! User: second message
//! Assistant:
//! ```
//!
//! The model continues after the last `Assistant:` (or the template's
//! opening of a reply); its reply ends where it starts a new `User:` line
//! (or at the model's end-of-turn token). When the conversation no longer
//! fits the model's context (leaving room for the reply), the oldest turns
//! are dropped; a system message is kept.

use crate::formats::{ChatMessage, ChatTemplate};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use std::sync::Arc;

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
    /// The role's name in chat templates and the OpenAI API.
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

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
    template: Option<Arc<ChatTemplate>>,
}

impl Conversation {
    /// An empty conversation rendered with `template` (an open model's own).
    pub fn with_template(template: Arc<ChatTemplate>) -> Self {
        Self {
            turns: Vec::new(),
            template: Some(template),
        }
    }

    /// Whether the model's own template renders it (else the plain one).
    pub fn has_template(&self) -> bool {
        self.template.is_some()
    }

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

    /// The prompt text of the system message (if any) and the turns from
    /// `first` on, ending with the opening of the reply.
    fn render_from(&self, first: usize) -> Result<String> {
        let system = self.turns.first().filter(|t| t.role == Role::System);
        let first = first.max(system.map_or(0, |_| 1));
        let turns = system.into_iter().chain(&self.turns[first..]);
        if let Some(template) = &self.template {
            let messages: Vec<ChatMessage> = turns
                .map(|t| ChatMessage::new(t.role.name(), t.text.as_str()))
                .collect();
            return template.render(&messages, true);
        }
        let mut text = String::new();
        for turn in turns {
            text.push_str(turn.role.label());
            text.push_str(": ");
            text.push_str(&turn.text);
            text.push('\n');
        }
        text.push_str("Assistant:");
        Ok(text)
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
        let system = usize::from(self.turns.first().is_some_and(|t| t.role == Role::System));
        for first in system..self.turns.len().max(system + 1) {
            let text = self.render_from(first)?;
            if tokenizer.encode(&text)?.len() <= budget {
                let dropped = first - system;
                self.turns.drain(system..first);
                return Ok((text, dropped));
            }
        }
        Err(Error::Invalid(format!(
            "the last message alone does not fit the model's context of {context} tokens with {reply_room} left for the reply; \
             send a shorter message or lower the reply length (/set max_tokens N)"
        )))
    }
}
