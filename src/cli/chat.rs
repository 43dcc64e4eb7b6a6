//! `seer chat`: talk with a model. The whole conversation is its context
//! (see `seer::generate::Conversation` for the template); lines that start
//! with `/` are commands. Reads one message per line, so it also works with
//! piped input.

use super::generate::SamplingArgs;
use super::text_model::ModelArgs;
use seer::generate::{generate_from_ids, GenerateOptions, Role, Sampler, REPLY_STOP};
use std::io::{BufRead, Write};
use std::process::ExitCode;

const HELP: &str =
    "commands: /reset  /set NAME VALUE (temperature, top_k, top_p, min_p, repetition_penalty, \
frequency_penalty, presence_penalty, max_tokens, seed)  /history  /save FILE  /quit";

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// A system message that frames the conversation (kept when old turns are dropped).
    #[arg(long)]
    system: Option<String>,
    /// Most tokens in one reply.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
}

/// Applies `/set NAME VALUE`.
fn set(args: &mut Args, name: &str, value: &str) -> anyhow::Result<()> {
    let float = || {
        value
            .parse::<f64>()
            .map_err(|_| anyhow::anyhow!("/set {name}: '{value}' is not a number"))
    };
    let int = || {
        value
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("/set {name}: '{value}' is not a whole number"))
    };
    let s = &mut args.sampling;
    match name {
        "temperature" => s.temperature = float()?,
        "top_k" => s.top_k = Some(int()? as usize),
        "top_p" => s.top_p = Some(float()?),
        "min_p" => s.min_p = Some(float()?),
        "repetition_penalty" => s.repetition_penalty = float()?,
        "frequency_penalty" => s.frequency_penalty = float()?,
        "presence_penalty" => s.presence_penalty = float()?,
        "seed" => s.seed = int()?,
        "max_tokens" => args.max_tokens = int()? as usize,
        other => anyhow::bail!("/set: unknown setting '{other}'; {HELP}"),
    }
    Ok(())
}

pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    let loaded = args.model.load()?;
    let tokenizer = loaded.tokenizer();
    Sampler::new(args.sampling.params(0))?;
    let context = loaded.model().context_length();
    let mut conversation = loaded.conversation();
    let system = args.system.clone();
    let start = |conversation: &mut seer::generate::Conversation| {
        if let Some(system) = &system {
            conversation.push(Role::System, system);
        }
    };
    start(&mut conversation);
    let mut stdout = std::io::stdout().lock();
    eprintln!(
        "chatting with {} ({context}-token context); {HELP}",
        loaded.describe(&args.model.model)
    );
    let mut replies = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(command) = line.strip_prefix('/') {
            let mut words = command.split_whitespace();
            let result = match (words.next(), words.next(), words.next()) {
                (Some("quit"), None, None) => break,
                (Some("reset"), None, None) => {
                    conversation.reset();
                    start(&mut conversation);
                    writeln!(stdout, "(conversation cleared)")?;
                    Ok(())
                }
                (Some("history"), None, None) => {
                    for turn in conversation.turns() {
                        writeln!(stdout, "{:?}: {}", turn.role, turn.text)?;
                    }
                    Ok(())
                }
                (Some("save"), Some(file), None) => {
                    let json = serde_json::to_string_pretty(conversation.turns())?;
                    std::fs::write(file, json + "\n")
                        .map_err(|e| anyhow::anyhow!("/save {file}: {e}"))
                        .map(|_| {
                            let _ = writeln!(
                                stdout,
                                "(saved {} turns to {file})",
                                conversation.turns().len()
                            );
                        })
                }
                (Some("set"), Some(name), Some(value)) => {
                    let mut trial = args.clone();
                    set(&mut trial, name, value)
                        .and_then(|_| Sampler::new(trial.sampling.params(0)).map_err(Into::into))
                        .map(|_| {
                            args.max_tokens = trial.max_tokens;
                            args.sampling = trial.sampling;
                            let _ = writeln!(stdout, "({name} = {value})");
                        })
                }
                _ => Err(anyhow::anyhow!("unknown command '/{command}'; {HELP}")),
            };
            if let Err(e) = result {
                eprintln!("error: {e}");
            }
            continue;
        }
        if let Err(e) = tokenizer.encode(line) {
            eprintln!("error: {e}");
            continue;
        }
        conversation.push(Role::User, line);
        // Room for the reply: its token limit, but at most half the context
        // (a longer reply slides the window as `seer generate` does).
        let reply_room = args.max_tokens.min(context / 2);
        let (prompt, dropped) = match conversation.prompt(tokenizer, context, reply_room) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                conversation.pop();
                continue;
            }
        };
        if dropped > 0 {
            eprintln!("(the context is full: dropped the {dropped} oldest turn(s))");
        }
        let mut sampler = Sampler::new(args.sampling.params(replies))?;
        replies += 1;
        // The plain template's reply ends where the model starts the next
        // user line; an open model's at its end-of-turn token.
        let plain = !conversation.has_template();
        let options = GenerateOptions {
            max_tokens: args.max_tokens,
            stop: if plain {
                vec![REPLY_STOP.to_string()]
            } else {
                Vec::new()
            },
            stop_ids: loaded.stop_ids(),
        };
        if plain {
            write!(stdout, "Assistant:")?;
        }
        let reply = generate_from_ids(
            loaded.model(),
            tokenizer,
            loaded.chat_ids(&prompt)?,
            &options,
            &mut sampler,
            super::stream_text(&mut stdout),
        )?;
        writeln!(stdout)?;
        conversation.push(Role::Assistant, &reply.text);
    }
    Ok(ExitCode::SUCCESS)
}
