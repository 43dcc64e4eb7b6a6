//! Diffusion schedules and samplers against diffusers' DDPMScheduler and
//! DDIMScheduler (fixtures made by scripts/reference/diffusion_parity.py):
//! tables, timesteps, noising, velocity targets and single steps must agree
//! to a relative error of 1e-5.

mod common;

use candle_core::{Device, Tensor};
use common::relative_error;
use seer::diffusion::{NoiseSchedule, Sampler, SamplerKind, SchedulerConfig};
use serde_json::Value;

const TOLERANCE: f64 = 1e-5;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/diffusion/schedulers.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn tensor(v: &Value, shape: &[usize]) -> Tensor {
    Tensor::from_vec(floats(v), shape, &Device::Cpu).unwrap()
}

fn close(ours: &[f32], theirs: &[f32], what: &str) {
    let a = Tensor::new(ours, &Device::Cpu).unwrap();
    let b = Tensor::new(theirs, &Device::Cpu).unwrap();
    let err = relative_error(&a, &b);
    assert!(err <= TOLERANCE, "{what}: relative error {err:e}");
}

fn schedules() -> Vec<(Value, NoiseSchedule)> {
    let fixture = fixture();
    fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let config: SchedulerConfig = serde_json::from_value(case["config"].clone()).unwrap();
            (case.clone(), NoiseSchedule::new(config).unwrap())
        })
        .collect()
}

fn shape() -> Vec<usize> {
    fixture()["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn tables_match_diffusers() {
    for (case, schedule) in schedules() {
        let step = case["table_step"].as_u64().unwrap() as usize;
        let pick = |table: &[f32]| -> Vec<f32> {
            let mut picked: Vec<f32> = table.iter().step_by(step).copied().collect();
            picked.push(*table.last().unwrap());
            picked
        };
        let name = format!("{:?}", schedule.config.beta_schedule);
        close(
            &pick(&schedule.betas),
            &floats(&case["betas"]),
            &format!("{name} betas"),
        );
        close(
            &pick(&schedule.alphas_cumprod),
            &floats(&case["alphas_cumprod"]),
            &format!("{name} alphas_cumprod"),
        );
    }
}

#[test]
fn timesteps_match_diffusers() {
    for (case, schedule) in schedules() {
        for (key, expected) in case["timesteps"].as_object().unwrap() {
            let (spacing, n) = key.split_once('/').unwrap();
            let n: usize = n.parse::<usize>().unwrap().min(schedule.len());
            let mut config = schedule.config.clone();
            config.timestep_spacing =
                serde_json::from_value(Value::String(spacing.into())).unwrap();
            let ours = NoiseSchedule::new(config).unwrap().timesteps(n).unwrap();
            let theirs: Vec<usize> = expected
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(ours, theirs, "{key}");
        }
    }
}

#[test]
fn noising_and_velocity_match_diffusers() {
    let shape = shape();
    for (case, schedule) in schedules() {
        let x0 = tensor(&case["x0"], &shape);
        let noise = tensor(&case["noise"], &shape);
        let t: Vec<usize> = case["noise_timesteps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as usize)
            .collect();
        let noisy = schedule.add_noise(&x0, &noise, &t).unwrap();
        assert!(relative_error(&noisy, &tensor(&case["noisy"], &shape)) <= TOLERANCE);
        let mut velocity_config = schedule.config.clone();
        velocity_config.prediction_type = seer::diffusion::Prediction::Velocity;
        let velocity = NoiseSchedule::new(velocity_config)
            .unwrap()
            .target(&x0, &noise, &t)
            .unwrap();
        assert!(relative_error(&velocity, &tensor(&case["velocity"], &shape)) <= TOLERANCE);
    }
}

#[test]
fn steps_match_diffusers() {
    let shape = shape();
    let mut checked = 0;
    for (case, schedule) in schedules() {
        for step in case["steps"].as_array().unwrap() {
            let kind = match step["sampler"].as_str().unwrap() {
                "ddpm" => SamplerKind::Ddpm,
                _ => SamplerKind::Ddim {
                    eta: step["eta"].as_f64().unwrap(),
                },
            };
            let n = step["steps"].as_u64().unwrap() as usize;
            let index = step["index"].as_u64().unwrap() as usize;
            let clipped = step["clipped"].as_bool().unwrap();
            let sampler = Sampler::new(schedule.clone(), kind, n)
                .unwrap()
                .with_clipped_noise(clipped);
            assert_eq!(
                sampler.timesteps()[index] as u64,
                step["timestep"].as_u64().unwrap()
            );
            let noise = tensor(&step["noise"], &shape);
            let out = sampler
                .step(
                    &tensor(&step["output"], &shape),
                    index,
                    &tensor(&step["sample"], &shape),
                    Some(&noise),
                )
                .unwrap();
            let what = format!(
                "{kind:?} {:?} index {index}",
                schedule.config.prediction_type
            );
            let err = relative_error(&out.prev_sample, &tensor(&step["prev_sample"], &shape));
            assert!(
                err <= TOLERANCE,
                "{what}: prev_sample relative error {err:e}"
            );
            let err = relative_error(&out.pred_original, &tensor(&step["pred_original"], &shape));
            assert!(
                err <= TOLERANCE,
                "{what}: pred_original relative error {err:e}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 60);
}

#[test]
fn bad_settings_are_refused() {
    let schedule = NoiseSchedule::new(SchedulerConfig::default()).unwrap();
    assert!(schedule.timesteps(0).is_err());
    assert!(schedule.timesteps(1001).is_err());
    assert!(Sampler::new(schedule.clone(), SamplerKind::Ddim { eta: -0.1 }, 10).is_err());
    let config = SchedulerConfig {
        variance_type: "learned".into(),
        ..SchedulerConfig::default()
    };
    let err = NoiseSchedule::new(config).unwrap_err().to_string();
    assert!(err.contains("variance_type"), "{err}");
    // A noisy step without its noise is an error, not a silent skip.
    let sampler = Sampler::new(schedule, SamplerKind::Ddpm, 10).unwrap();
    let x = Tensor::zeros((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(sampler.step(&x, 0, &x, None).is_err());
}

/// Min-SNR-γ: whatever the prediction type, the weighted squared error of
/// a prediction equals `min(SNR, γ)` times the squared error of the clean
/// image it implies (Hang et al., 2023), at low, middle and high noise.
#[test]
fn min_snr_weight_scales_the_clean_image_error() {
    use seer::diffusion::{BetaSchedule, Prediction};
    let device = Device::Cpu;
    let x0 = Tensor::new(&[0.5f32, -0.25, 0.75, -1.0], &device).unwrap();
    let noise = Tensor::new(&[0.3f32, 1.2, -0.7, 0.1], &device).unwrap();
    let guess = Tensor::new(&[0.1f32, 0.9, -0.2, 0.4], &device).unwrap();
    let gamma = 5.0;
    for prediction_type in [
        Prediction::Epsilon,
        Prediction::Velocity,
        Prediction::Sample,
    ] {
        let schedule = NoiseSchedule::new(SchedulerConfig {
            beta_schedule: BetaSchedule::Cosine,
            prediction_type,
            ..SchedulerConfig::default()
        })
        .unwrap();
        for t in [3, 100, 500, 900, 999] {
            let ab = schedule.alpha_bar(Some(t));
            let (a, s) = (ab.sqrt(), (1.0 - ab).sqrt());
            let x0 = x0.unsqueeze(0).unwrap();
            let noise = noise.unsqueeze(0).unwrap();
            let xt = schedule.add_noise(&x0, &noise, &[t]).unwrap();
            let target = schedule.target(&x0, &noise, &[t]).unwrap();
            let guess = guess.unsqueeze(0).unwrap();
            // The clean image that the guess implies.
            let x0_hat = match prediction_type {
                Prediction::Epsilon => ((&xt - (&guess * s).unwrap()).unwrap() / a).unwrap(),
                Prediction::Velocity => ((&xt * a).unwrap() - (&guess * s).unwrap()).unwrap(),
                Prediction::Sample => guess.clone(),
            };
            let sq = |d: Tensor| {
                d.sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap() as f64
            };
            let weighted = schedule.min_snr_weight(t, gamma) * sq((&guess - &target).unwrap());
            let snr = ab / (1.0 - ab);
            let expected = snr.min(gamma) * sq((&x0_hat - &x0).unwrap());
            let err = (weighted - expected).abs() / expected.abs().max(1e-12);
            assert!(
                err < 1e-3,
                "{prediction_type:?} t={t}: {weighted} vs {expected}"
            );
        }
    }
}

/// The loss-weighting and timestep settings refuse bad values by name.
#[test]
fn negative_loss_weighting_is_refused() {
    let mut config = seer::train::ImageTrainConfig::preset("tiny").unwrap();
    config.min_snr_gamma = -1.0;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("min_snr_gamma"), "{err}");
    config.min_snr_gamma = 5.0;
    config.logit_normal_std = f64::NAN;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("logit_normal_std"), "{err}");
    config.logit_normal_std = 1.0;
    config.timestep_shift = 0.0;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("timestep_shift"), "{err}");
    config.timestep_shift = 3.0;
    config.validate().unwrap();
}
