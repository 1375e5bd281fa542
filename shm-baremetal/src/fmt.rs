//! Protocol logging: through `defmt` with the `defmt` feature, nowhere
//! otherwise (the arguments are still type-checked, never evaluated).

#[cfg(feature = "defmt")]
macro_rules! debug {
    ($($arg:tt)*) => { ::defmt::debug!($($arg)*) };
}

#[cfg(not(feature = "defmt"))]
macro_rules! debug {
    ($($arg:tt)*) => {{
        if false {
            let _ = ($($arg)*);
        }
    }};
}

#[cfg(feature = "defmt")]
macro_rules! warning {
    ($($arg:tt)*) => { ::defmt::warn!($($arg)*) };
}

#[cfg(not(feature = "defmt"))]
macro_rules! warning {
    ($($arg:tt)*) => {{
        if false {
            let _ = ($($arg)*);
        }
    }};
}

pub(crate) use {debug, warning};
