//! Choosing where tensors live: `--device cpu|cuda[:N]`.

use crate::{Error, Result};
use candle_core::Device;

/// Parses `cpu`, `cuda` or `cuda:N` into a device.
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        _ => {
            let ordinal = match spec.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| {
                        Error::Invalid(format!("--device '{spec}': use cpu, cuda or cuda:N"))
                    })?,
                None => {
                    return Err(Error::Invalid(format!(
                        "--device '{spec}': use cpu, cuda or cuda:N"
                    )))
                }
            };
            Device::new_cuda(ordinal).map_err(|e| {
                Error::Invalid(format!(
                    "--device {spec}: {e}; build seer with `--features cuda` on a machine with CUDA"
                ))
            })
        }
    }
}
