//! In-memory store (placeholder until implemented)
