//! Placeholder: Docker evidence (being written).
