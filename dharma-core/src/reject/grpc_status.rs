//! Denials as gRPC statuses: a code chosen from the category, and a fixed message.

use super::{Category, Denial};

impl Category {
    /// The gRPC status code (numeric, as in `grpc-status`): `UNAUTHENTICATED` (16),
    /// `PERMISSION_DENIED` (7), `INVALID_ARGUMENT` (3), `UNIMPLEMENTED` (12) for a method
    /// that is not exposed, `INTERNAL` (13), `UNAVAILABLE` (14).
    pub fn grpc_code(self) -> i32 {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => 16,
            Self::InsufficientScope | Self::Forbidden => 7,
            Self::Malformed => 3,
            Self::NotFound | Self::MethodNotAllowed => 12,
            Self::Internal => 13,
            Self::Unavailable => 14,
        }
    }

    fn grpc_message(self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => "authentication required",
            Self::InsufficientScope | Self::Forbidden => "permission denied",
            Self::NotFound | Self::MethodNotAllowed => "method not exposed",
            Self::Unavailable => "temporarily unavailable",
            Self::Internal => "internal error",
            Self::Malformed => "request refused",
        }
    }
}

impl Denial {
    /// The gRPC status code that carries this denial (see [`Category::grpc_code`]).
    pub fn grpc_code(&self) -> i32 {
        self.category().grpc_code()
    }

    /// The gRPC status message: the fixed description, or a fixed phrase for the
    /// category, never details.
    pub fn grpc_message(&self) -> &'static str {
        self.description()
            .unwrap_or_else(|| self.category().grpc_message())
    }
}
