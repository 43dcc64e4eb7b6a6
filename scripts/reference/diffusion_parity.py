"""Records what diffusers' DDPMScheduler and DDIMScheduler compute, for
tests/diffusion.rs: the beta and alpha-bar tables of each schedule, the
inference timesteps of each spacing, noising and velocity targets, and single
steps (DDPM with its noise; DDIM with eta 0 and 0.5) for each prediction
type, on small random tensors that are stored alongside."""
import json
import sys
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
SHAPE = (2, 2, 3, 3)
# Every 37th entry of the 1000-long tables, and the last, keeps the file small.
TABLE_STEP = 37


def flat(t):
    return [float(f"{x:.9g}") for x in t.flatten().tolist()]


CONFIGS = [
    dict(beta_schedule="linear"),
    dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
    dict(beta_schedule="squaredcos_cap_v2"),
    dict(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction", clip_sample=False),
    dict(beta_schedule="linear", prediction_type="sample", num_train_timesteps=100),
]
cases = []
for config in CONFIGS:
    ddpm = DDPMScheduler(**config)
    x0 = torch.randn(SHAPE).clamp(-1, 1)
    noise = torch.randn(SHAPE)
    ts = torch.tensor([3, ddpm.config.num_train_timesteps - 1])
    case = {
        "config": dict(ddpm.config),
        "table_step": TABLE_STEP,
        "betas": flat(ddpm.betas[::TABLE_STEP]) + flat(ddpm.betas[-1:]),
        "alphas_cumprod": flat(ddpm.alphas_cumprod[::TABLE_STEP]) + flat(ddpm.alphas_cumprod[-1:]),
        "x0": flat(x0),
        "noise": flat(noise),
        "noise_timesteps": ts.tolist(),
        "noisy": flat(ddpm.add_noise(x0, noise, ts)),
        "velocity": flat(ddpm.get_velocity(x0, noise, ts)),
        "timesteps": {},
        "steps": [],
    }
    for spacing in ("leading", "trailing", "linspace"):
        for n in (1, 7, 50):
            s = DDPMScheduler(**{**config, "timestep_spacing": spacing})
            s.set_timesteps(min(n, s.config.num_train_timesteps))
            case["timesteps"][f"{spacing}/{n}"] = s.timesteps.tolist()
    n = 10
    for sampler, eta, clipped in (("ddpm", None, False), ("ddim", 0.0, False), ("ddim", 0.5, False), ("ddim", 0.0, True)):
        s = (DDPMScheduler if sampler == "ddpm" else DDIMScheduler)(**config)
        s.set_timesteps(n)
        for index in (0, 4, n - 1):
            t = int(s.timesteps[index])
            sample = torch.randn(SHAPE)
            output = torch.randn(SHAPE)
            step_noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(index))
            if sampler == "ddpm":
                res = s.step(output, t, sample, generator=torch.Generator().manual_seed(index))
            else:
                res = s.step(output, t, sample, eta=eta, variance_noise=step_noise, use_clipped_model_output=clipped)
            case["steps"].append({
                "sampler": sampler, "eta": eta, "clipped": clipped, "steps": n, "index": index, "timestep": t,
                "sample": flat(sample), "output": flat(output), "noise": flat(step_noise),
                "prev_sample": flat(res.prev_sample), "pred_original": flat(res.pred_original_sample),
            })
    cases.append(case)
(out / "schedulers.json").write_text(json.dumps({"shape": SHAPE, "cases": cases}))
print(f"wrote {out / 'schedulers.json'}")
