//! cx
