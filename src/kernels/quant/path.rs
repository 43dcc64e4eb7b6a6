//! Which kernel path runs: the widest the CPU supports, found at run time
//! (one binary serves every x86-64), or the one `SEER_KERNELS` names.

use crate::{Error, Result};
use std::sync::OnceLock;

/// The environment variable that picks a kernel path.
pub const KERNELS_VAR: &str = "SEER_KERNELS";

/// A family of kernels, each for a level of the CPU's instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// x86-64 with AVX-512 F and BW (as well as AVX2, FMA and F16C).
    Avx512,
    /// x86-64 with AVX2, FMA and F16C (Haswell, Zen and later).
    Avx2,
    /// Plain Rust for any CPU.
    Portable,
}

impl KernelPath {
    /// Every path, widest first.
    pub const ALL: [KernelPath; 3] = [Self::Avx512, Self::Avx2, Self::Portable];

    /// Whether this is a SIMD path (one that runs the regrouped kernels).
    pub fn is_simd(self) -> bool {
        self != Self::Portable
    }

    /// The name `SEER_KERNELS` takes for this path.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2 => "avx2",
            Self::Portable => "portable",
        }
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => {
                Self::Avx2.available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 | Self::Avx512 => false,
        }
    }

    /// The paths this CPU can run, widest first.
    pub fn supported() -> Vec<KernelPath> {
        Self::ALL.into_iter().filter(|p| p.available()).collect()
    }

    /// The widest path this CPU runs.
    pub fn best() -> Self {
        Self::ALL
            .into_iter()
            .find(|p| p.available())
            .unwrap_or(Self::Portable)
    }

    /// The path `setting` (the value of `SEER_KERNELS`, if set) asks for:
    /// the best one when unset or empty, an error naming the variable when
    /// it names no path or one this CPU cannot run.
    pub fn from_setting(setting: Option<&str>) -> Result<Self> {
        let Some(value) = setting.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Self::best());
        };
        let path = Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(value))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{KERNELS_VAR}={value} names no kernel path; use avx512, avx2 or portable"
                ))
            })?;
        if !path.available() {
            let here: Vec<_> = Self::supported().iter().map(|p| p.name()).collect();
            return Err(Error::Invalid(format!(
                "{KERNELS_VAR}={value}: this CPU cannot run the {} kernels (it runs: {})",
                path.name(),
                here.join(", ")
            )));
        }
        Ok(path)
    }

    /// The path for this process: `SEER_KERNELS` if set, else the best one
    /// (read once, then remembered).
    pub fn detect() -> Result<Self> {
        static CHOSEN: OnceLock<std::result::Result<KernelPath, String>> = OnceLock::new();
        CHOSEN
            .get_or_init(|| {
                let setting = std::env::var(KERNELS_VAR).ok();
                Self::from_setting(setting.as_deref()).map_err(|e| e.to_string())
            })
            .clone()
            .map_err(Error::Invalid)
    }
}

impl std::fmt::Display for KernelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_pick_a_path_or_name_the_variable() {
        assert_eq!(KernelPath::from_setting(None).unwrap(), KernelPath::best());
        assert_eq!(
            KernelPath::from_setting(Some(" ")).unwrap(),
            KernelPath::best()
        );
        assert_eq!(
            KernelPath::from_setting(Some("Portable")).unwrap(),
            KernelPath::Portable
        );
        let err = KernelPath::from_setting(Some("sse9"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(KERNELS_VAR) && err.contains("sse9"), "{err}");
        for path in KernelPath::ALL {
            let chosen = KernelPath::from_setting(Some(path.name()));
            assert_eq!(chosen.is_ok(), path.available(), "{path}");
            if let Err(e) = chosen {
                assert!(e.to_string().contains(KERNELS_VAR));
            }
        }
        assert!(KernelPath::supported().contains(&KernelPath::Portable));
    }
}
