//! The synthetic-world generator.
