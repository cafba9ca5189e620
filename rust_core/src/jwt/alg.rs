//! The supported JWS algorithms and their names.

use crate::errors::{CoreError, CoreResult};

/// A supported JWS algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hs256,
    Hs384,
    Hs512,
    EdDsa,
}

impl Alg {
    /// Parses the JWS `alg` name; `InvalidArgument` for anything unsupported (including `none`).
    pub fn parse(name: &str) -> CoreResult<Self> {
        match name {
            "HS256" => Ok(Self::Hs256),
            "HS384" => Ok(Self::Hs384),
            "HS512" => Ok(Self::Hs512),
            "EdDSA" => Ok(Self::EdDsa),
            _ => Err(CoreError::InvalidArgument(format!(
                "unsupported algorithm {name:?}: expected HS256, HS384, HS512 or EdDSA"
            ))),
        }
    }

    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
            Self::EdDsa => "EdDSA",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for alg in [Alg::Hs256, Alg::Hs384, Alg::Hs512, Alg::EdDsa] {
            assert_eq!(Alg::parse(alg.name()), Ok(alg));
        }
        for name in ["none", "hs256", "RS256", "ES256", ""] {
            assert!(matches!(
                Alg::parse(name),
                Err(CoreError::InvalidArgument(_))
            ));
        }
    }
}
