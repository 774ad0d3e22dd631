//! Reading RON values into configs, and the variant overrides that set one field of a config by
//! name (`"lb.strategy": RoundRobin`).

use ron::extensions::Extensions;

/// How deep RON values may nest; ron stops there instead of overflowing the stack.
pub const RECURSION_LIMIT: usize = 128;

/// The RON options every scenario value is read with: `Some(..)` may be left out.
pub fn ron_options() -> ron::Options {
    ron::Options::default()
        .with_default_extension(Extensions::IMPLICIT_SOME)
        .with_recursion_limit(RECURSION_LIMIT)
}

/// Deserialize one RON value (an override or a plug-in's config).
pub fn parse_value<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, ron::error::SpannedError> {
    ron_options().from_str(text)
}

/// Why an override could not be applied to a config.
#[derive(Debug)]
pub enum SetError {
    /// The config has no such field.
    UnknownField(&'static [&'static str]),
    /// The value does not fit the field.
    Value(ron::error::SpannedError),
    /// This config cannot be overridden by field (the reason says why).
    Unsupported(String),
}

/// Configs whose fields a variant can override by name.
pub trait Settable {
    /// Replace field `field` with the RON value `text`.
    fn set(&mut self, field: &str, text: &str) -> Result<(), SetError>;
}

/// Implement [`Settable`] for a config struct by listing its fields.
#[macro_export]
macro_rules! settable {
    ($ty:ty { $($field:ident),* $(,)? }) => {
        impl $crate::contract::settable::Settable for $ty {
            fn set(&mut self, field: &str, text: &str) -> Result<(), $crate::contract::settable::SetError> {
                match field {
                    $(stringify!($field) => {
                        self.$field = $crate::contract::settable::parse_value(text).map_err($crate::contract::settable::SetError::Value)?;
                        Ok(())
                    })*
                    _ => Err($crate::contract::settable::SetError::UnknownField(&[$(stringify!($field)),*])),
                }
            }
        }
    };
}
