//! The text engine: one thread owns the model and runs every request's
//! generation, batching their decode steps (continuous batching). Requests
//! join between steps; a finished one leaves; one whose client went away
//! (its event receiver dropped) is stopped and leaves too.

use crate::generate::{
    FinishReason, GenerateOptions, LoadedModel, Sampler, SamplingParams, Sequence, TextModel,
};
use crate::threads::on_pool;
use crate::tokenize::Tokenizer;
use crate::Result;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// One generation to run.
pub struct Job {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// Token limit and stop sequences.
    pub options: GenerateOptions,
    /// Sampling settings.
    pub sampling: SamplingParams,
    /// Where its text and its end go.
    pub events: UnboundedSender<JobEvent>,
}

/// What a job reports.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// New text.
    Text(String),
    /// The end, with the token counts.
    Done {
        /// Why it ended.
        finish_reason: FinishReason,
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Tokens generated.
        completion_tokens: usize,
    },
    /// It failed.
    Failed(String),
}

/// A handle on the engine thread.
#[derive(Clone)]
pub struct TextEngine {
    jobs: Sender<Job>,
    active: Arc<AtomicUsize>,
}

/// A job being generated.
struct Active {
    sequence: Sequence,
    events: UnboundedSender<JobEvent>,
}

impl TextEngine {
    /// Starts the engine thread; it batches up to `max_batch` sequences.
    pub fn start(model: Arc<LoadedModel>, max_batch: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel();
        let active = Arc::new(AtomicUsize::new(0));
        let count = active.clone();
        std::thread::Builder::new()
            .name("seer-text-engine".into())
            .spawn(move || {
                run(
                    model.model(),
                    model.tokenizer(),
                    &queue,
                    max_batch.max(1),
                    &count,
                )
            })
            .expect("the engine thread starts");
        Self { jobs, active }
    }

    /// Sequences being generated now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Queues a job; false if the engine has stopped.
    pub fn submit(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}

/// The engine loop: admit new jobs, feed every prompt alone, then one token
/// of every sequence in one batch; until every handle is gone.
fn run(
    model: &dyn TextModel,
    tokenizer: &Tokenizer,
    queue: &Receiver<Job>,
    max_batch: usize,
    count: &AtomicUsize,
) {
    let mut active: Vec<Active> = Vec::new();
    loop {
        count.store(active.len(), Ordering::Relaxed);
        if active.is_empty() {
            match queue.recv() {
                Ok(job) => on_pool(|| admit(model, tokenizer, job, &mut active)),
                Err(_) => return,
            }
        }
        while active.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => on_pool(|| admit(model, tokenizer, job, &mut active)),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        // Clients that went away stop here.
        active.retain(|a| !a.events.is_closed());
        count.store(active.len(), Ordering::Relaxed);
        if let Err(e) = on_pool(|| step(model, tokenizer, &mut active)) {
            for a in active.drain(..) {
                let _ = a.events.send(JobEvent::Failed(e.to_string()));
            }
        }
        active.retain(|a| a.sequence.finished().is_none());
    }
}

/// Starts a job's sequence, or reports why it cannot start.
fn admit(model: &dyn TextModel, tokenizer: &Tokenizer, job: Job, active: &mut Vec<Active>) {
    let started = Sampler::new(job.sampling)
        .and_then(|sampler| Sequence::new(model, tokenizer, job.prompt_ids, &job.options, sampler));
    match started {
        Ok(sequence) if sequence.finished().is_some() => {
            let _ = job.events.send(JobEvent::Done {
                finish_reason: FinishReason::Length,
                prompt_tokens: sequence.prompt_len(),
                completion_tokens: 0,
            });
        }
        Ok(sequence) => active.push(Active {
            sequence,
            events: job.events,
        }),
        Err(e) => {
            let _ = job.events.send(JobEvent::Failed(e.to_string()));
        }
    }
}

/// One token for every active sequence: those with several tokens to feed
/// (a new prompt, or a context rebuilt after sliding) alone, the rest in one
/// batch.
fn step(model: &dyn TextModel, tokenizer: &Tokenizer, active: &mut [Active]) -> Result<()> {
    let mut batch = Vec::new();
    for (i, a) in active.iter_mut().enumerate() {
        a.sequence.make_room();
        let pending = a.sequence.pending().to_vec();
        if pending.len() == 1 {
            batch.push((i, pending[0]));
            continue;
        }
        let logits = model.next_logits(&pending, a.sequence.cache_mut())?;
        accept(tokenizer, a, &logits)?;
    }
    if batch.is_empty() {
        return Ok(());
    }
    let ids: Vec<u32> = batch.iter().map(|&(_, id)| id).collect();
    let logits = {
        let mut caches: Vec<_> = active
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| batch.iter().any(|(b, _)| b == i))
            .map(|(_, a)| a.sequence.cache_mut())
            .collect();
        model.next_logits_batch(&ids, &mut caches)?
    };
    for (row, &(i, _)) in logits.iter().zip(&batch) {
        accept(tokenizer, &mut active[i], row)?;
    }
    Ok(())
}

/// Samples a sequence's next token from its next-token `logits` and reports it.
fn accept(tokenizer: &Tokenizer, a: &mut Active, logits: &[f32]) -> Result<()> {
    let step = a.sequence.accept(tokenizer, logits)?;
    if !step.text.is_empty() {
        let _ = a.events.send(JobEvent::Text(step.text));
    }
    if let Some(finish_reason) = step.finished {
        let _ = a.events.send(JobEvent::Done {
            finish_reason,
            prompt_tokens: a.sequence.prompt_len(),
            completion_tokens: a.sequence.generated_len(),
        });
    }
    Ok(())
}
