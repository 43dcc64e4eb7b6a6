//! Chat templates: the Jinja program a model file carries
//! (`tokenizer.chat_template`) that turns a conversation into the prompt text
//! the model was trained on.
//!
//! Rendering follows Hugging Face's `apply_chat_template`: a Jinja environment
//! with `trim_blocks` and `lstrip_blocks`, loop controls (`break`,
//! `continue`), the variables `messages`, `add_generation_prompt`,
//! `bos_token`, `eos_token` (and `tools`, `documents` as none), the functions
//! `raise_exception(msg)` and `strftime_now(format)`, a `tojson` that writes
//! as Python's `json.dumps` does, Python's string, list and dict methods
//! (`.strip()`, `.startswith()`, `.split()`, `.items()`, ... from
//! minijinja-contrib's pycompat), and `None`/`True`/`False` printed as Python
//! prints them.
//!
//! Templates come from downloaded files, so they are untrusted: every render
//! runs on a fuel budget (instructions and allocation) and a recursion limit,
//! and a template that loops forever or nests without end fails with an
//! error instead of hanging.

use crate::formats::py_json::{self, Layout};
use crate::{Error, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{context, Environment, ErrorKind, Output, State};

/// ChatML, the template used when a model file has none: every message as
/// `<|im_start|>{role}\n{content}<|im_end|>\n`, then `<|im_start|>assistant\n`
/// when a reply is wanted (llama.cpp's fallback as well).
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The fuel one render may burn: about this many instructions, or this many
/// 64-byte blocks of allocation (so at most about 256 MB). Real templates use a
/// few hundred per message.
const FUEL: u64 = 4_000_000;

/// How deep one render may nest (loops, macros, includes). Real templates stay
/// under 10.
const RECURSION_LIMIT: usize = 100;

/// The name the template is stored under, shown in error locations.
const NAME: &str = "chat_template";

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who speaks: `system`, `user`, `assistant` (or whatever the template knows).
    pub role: String,
    /// What they say.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role` saying `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template with the special tokens it may print.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish_non_exhaustive()
    }
}

/// The marker on an error raised by the template's own `raise_exception`.
#[derive(Debug)]
struct Raised;

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("raised by the template")
    }
}

impl std::error::Error for Raised {}

impl ChatTemplate {
    /// Compiles `source`; `bos` and `eos` are the texts of the model's
    /// beginning- and end-of-sequence tokens (`bos_token`, `eos_token`).
    /// A syntax error is reported with its line.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| template_error("cannot be configured", &e))?;
        env.set_syntax(syntax);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(python_formatter);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| template_error("is not valid Jinja", &e))?;
        Ok(Self {
            env,
            bos: bos.to_owned(),
            eos: eos.to_owned(),
        })
    }

    /// The ChatML fallback ([`CHATML`]), for model files without a template.
    pub fn chatml(bos: &str, eos: &str) -> Result<Self> {
        Self::new(CHATML, bos, eos)
    }

    /// The prompt text for `messages`; with `add_generation_prompt`, it ends
    /// with the opening of the assistant's reply. An error carries the
    /// template's own message when it refuses the conversation
    /// (`raise_exception`), or says what failed and where.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let context = context! {
            messages,
            add_generation_prompt,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
            tools => (),
            documents => (),
        };
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| template_error("is missing", &e))?;
        template.render(context).map_err(|e| {
            let raised = std::error::Error::source(&e).is_some_and(|s| s.is::<Raised>());
            match (raised, e.detail()) {
                (true, Some(message)) => Error::Invalid(format!(
                    "the chat template refused the conversation: {message}"
                )),
                _ => template_error("failed", &e),
            }
        })
    }
}

fn template_error(what: &str, e: &minijinja::Error) -> Error {
    let place = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    let kind = e.kind();
    let hint = match kind {
        ErrorKind::OutOfFuel => {
            ": it ran too long or built too much text; the template may loop without end"
        }
        _ => "",
    };
    match e.detail() {
        Some(detail) => Error::Invalid(format!(
            "chat template {what}: {kind}: {detail}{place}{hint}"
        )),
        None => Error::Invalid(format!("chat template {what}: {kind}{place}{hint}")),
    }
}

/// `raise_exception(message)`: the template refuses the conversation.
fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message).with_source(Raised))
}

/// `strftime_now(format)`: the local time now, formatted as Python's
/// `datetime.now().strftime(format)`.
fn strftime_now(format: String) -> std::result::Result<Value, minijinja::Error> {
    let now = jiff::Zoned::now();
    jiff::fmt::strtime::format(format.as_bytes(), &now)
        .map(Value::from)
        .map_err(|e| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("strftime_now cannot use the format {format:?}: {e}"),
            )
        })
}

/// `tojson`, as Hugging Face defines it: `json.dumps(x, ensure_ascii=False)`
/// with the optional `indent`, `ensure_ascii` and `sort_keys`.
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let layout = Layout {
        indent,
        ensure_ascii: ensure_ascii.unwrap_or(false),
        sort_keys: sort_keys.unwrap_or(false),
    };
    py_json::dumps(value, layout).map(Value::from_safe_string)
}

/// Prints values as Jinja under Python does: `None`, `True`, `False`.
fn python_formatter(
    out: &mut Output,
    state: &mut State,
    value: &Value,
) -> std::result::Result<(), minijinja::Error> {
    let text = match value.kind() {
        ValueKind::None => "None",
        ValueKind::Bool if value.is_true() => "True",
        ValueKind::Bool => "False",
        _ => return minijinja::escape_formatter(out, state, value),
    };
    out.write_str(text).map_err(minijinja::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> Vec<ChatMessage> {
        vec![
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Hi"),
        ]
    }

    #[test]
    fn chatml_fallback() {
        let t = ChatTemplate::chatml("<s>", "</s>").unwrap();
        assert_eq!(
            t.render(&chat(), true).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(!t.render(&chat(), false).unwrap().ends_with("assistant\n"));
    }

    #[test]
    fn raise_exception_carries_the_message() {
        let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let err = t.render(&chat(), false).unwrap_err().to_string();
        assert_eq!(
            err,
            "the chat template refused the conversation: roles must alternate"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = ChatTemplate::new("ok\n{% for m in messages %}", "", "").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn python_flavour() {
        let t = ChatTemplate::new(
            "{{ none }} {{ true }} {{ messages[1].content.upper() }} {{ ' x '.strip() }} \
             {{ 'a b'.split() }} {{ bos_token }}{{ eos_token }} {{ tools is none }}",
            "<s>",
            "</s>",
        )
        .unwrap();
        assert_eq!(
            t.render(&chat(), false).unwrap(),
            "None True HI x ['a', 'b'] <s></s> True"
        );
    }

    #[test]
    fn strftime_now_formats_the_date() {
        let t = ChatTemplate::new("{{ strftime_now('%Y') }}", "", "").unwrap();
        let year = t.render(&[], false).unwrap();
        assert!(year.len() == 4 && year.starts_with('2'), "{year}");
        let bad = ChatTemplate::new("{{ strftime_now('%') }}", "", "").unwrap();
        assert!(bad.render(&[], false).is_err());
    }

    #[test]
    fn hostile_templates_fail_instead_of_hanging() {
        for source in [
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            "{{ 'x' * 1000000000 }}",
            "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        ] {
            let t = ChatTemplate::new(source, "", "").unwrap();
            let err = t.render(&chat(), false).unwrap_err();
            assert!(err.to_string().starts_with("chat template failed"), "{source}: {err}");
        }
    }
}
