//! The sampler's filters and penalties, with hand-computed expectations.

use seer::generate::{Sampler, SamplingParams};

fn sampler(params: SamplingParams) -> Sampler {
    Sampler::new(params).unwrap()
}

/// Logits whose softmax is exactly `probs`.
fn logits(probs: &[f64]) -> Vec<f32> {
    probs.iter().map(|p| p.ln() as f32).collect()
}

fn kept(params: SamplingParams, probs: &[f64]) -> Vec<u32> {
    let scores: Vec<f64> = probs.iter().map(|p| p.ln()).collect();
    sampler(params)
        .candidates(&scores)
        .iter()
        .map(|c| c.0)
        .collect()
}

#[test]
fn top_p_keeps_the_smallest_set_reaching_p() {
    let probs = [0.2, 0.5, 0.3];
    let with = |p: f64| {
        kept(
            SamplingParams {
                temperature: 1.0,
                top_p: Some(p),
                ..Default::default()
            },
            &probs,
        )
    };
    assert_eq!(with(0.5), vec![1]);
    assert_eq!(with(0.6), vec![1, 2]);
    assert_eq!(with(0.79), vec![1, 2]);
    assert_eq!(with(0.81), vec![1, 2, 0]);
    assert_eq!(with(1.0), vec![1, 2, 0]);
}

#[test]
fn min_p_and_top_k_filter_relative_to_the_most_likely() {
    let probs = [0.2, 0.5, 0.3];
    let min_p = |m: f64| {
        kept(
            SamplingParams {
                temperature: 1.0,
                min_p: Some(m),
                ..Default::default()
            },
            &probs,
        )
    };
    assert_eq!(min_p(0.5), vec![1, 2]);
    assert_eq!(min_p(0.39), vec![1, 2, 0]);
    assert_eq!(min_p(0.61), vec![1]);
    let top_k = kept(
        SamplingParams {
            temperature: 1.0,
            top_k: Some(2),
            ..Default::default()
        },
        &probs,
    );
    assert_eq!(top_k, vec![1, 2]);
}

#[test]
fn repetition_penalty_divides_positive_and_multiplies_negative_logits() {
    // Greedy: token 0 (logit 2) wins until it is penalised to 2/2 = 1 < 1.5.
    let params = SamplingParams {
        temperature: 0.0,
        repetition_penalty: 2.0,
        ..Default::default()
    };
    let mut s = sampler(params);
    assert_eq!(s.sample(&[2.0, -2.0, 1.5], &[], &[]), 0);
    assert_eq!(s.sample(&[2.0, -2.0, 1.5], &[0], &[]), 2);
    // A negative logit becomes more negative: -0.5 · 2 = -1 < -0.9.
    assert_eq!(s.sample(&[-0.5, -0.9, -3.0], &[], &[0]), 1);
}

#[test]
fn frequency_and_presence_penalties_follow_openai() {
    // Token 0 appeared twice: 3 - (2 · 0.5 + 0.6) = 1.4 < 1.5.
    let params = SamplingParams {
        temperature: 0.0,
        frequency_penalty: 0.5,
        presence_penalty: 0.6,
        ..Default::default()
    };
    let mut s = sampler(params);
    assert_eq!(
        s.sample(&[3.0, 1.5], &[0, 0, 0], &[]),
        0,
        "the prompt does not count"
    );
    assert_eq!(s.sample(&[3.0, 1.5], &[], &[0, 0]), 1);
    assert_eq!(s.sample(&[3.0, 1.3], &[], &[0, 0]), 0);
}

#[test]
fn sampling_follows_the_distribution_and_the_seed() {
    let probs = [0.7, 0.2, 0.1];
    let mut s = sampler(SamplingParams {
        temperature: 1.0,
        seed: 5,
        ..Default::default()
    });
    let mut counts = [0usize; 3];
    let draws: Vec<u32> = (0..20_000)
        .map(|_| s.sample(&logits(&probs), &[], &[]))
        .collect();
    for &d in &draws {
        counts[d as usize] += 1;
    }
    for (c, p) in counts.iter().zip(probs) {
        let f = *c as f64 / draws.len() as f64;
        assert!((f - p).abs() < 0.015, "frequency {f} for probability {p}");
    }
    let mut again = sampler(SamplingParams {
        temperature: 1.0,
        seed: 5,
        ..Default::default()
    });
    let replay: Vec<u32> = (0..20_000)
        .map(|_| again.sample(&logits(&probs), &[], &[]))
        .collect();
    assert_eq!(draws, replay);
    // A low temperature sharpens: almost always the most likely token.
    let mut cold = sampler(SamplingParams {
        temperature: 0.05,
        seed: 5,
        ..Default::default()
    });
    let ones = (0..1000)
        .filter(|_| cold.sample(&logits(&probs), &[], &[]) == 0)
        .count();
    assert!(ones > 990, "{ones}");
}

#[test]
fn bad_settings_are_refused_by_flag_name() {
    let bad = |params: SamplingParams, flag: &str| {
        let err = Sampler::new(params).err().unwrap().to_string();
        assert!(err.contains(flag), "{err}");
    };
    bad(
        SamplingParams {
            temperature: -0.1,
            ..Default::default()
        },
        "--temperature",
    );
    bad(
        SamplingParams {
            top_p: Some(0.0),
            ..Default::default()
        },
        "--top-p",
    );
    bad(
        SamplingParams {
            top_p: Some(1.5),
            ..Default::default()
        },
        "--top-p",
    );
    bad(
        SamplingParams {
            min_p: Some(1.5),
            ..Default::default()
        },
        "--min-p",
    );
    bad(
        SamplingParams {
            top_k: Some(0),
            ..Default::default()
        },
        "--top-k",
    );
    bad(
        SamplingParams {
            repetition_penalty: 0.0,
            ..Default::default()
        },
        "--repetition-penalty",
    );
    bad(
        SamplingParams {
            frequency_penalty: 3.0,
            ..Default::default()
        },
        "--frequency-penalty",
    );
}
