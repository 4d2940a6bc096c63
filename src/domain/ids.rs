//! Typed ids: a `CompanyId` can never be passed where a `MessageId` is expected.

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, sqlx::Type, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> Self {
                Self(id)
            }
        }
    };
}

uuid_id!(
    /// A tenant of the CRM.
    CompanyId
);
uuid_id!(
    /// A CRM user (`users.id`, the JWT `sub`).
    UserId
);
uuid_id!(
    /// A company API key (not the secret itself).
    ApiKeyId
);
uuid_id!(
    /// One SMS the service was asked to send.
    MessageId
);
uuid_id!(
    /// One purchase of credits.
    PaymentId
);
uuid_id!(
    /// A reservation of credits for one message.
    HoldId
);
