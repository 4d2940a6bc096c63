use sqlx::PgPool;

use crate::domain::{CompanyId, Role, UserId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub company_id: Option<CompanyId>,
    pub email: Option<String>,
    #[sqlx(try_from = "String")]
    pub role: RoleColumn,
}

/// `users.role` as stored (the CHECK constraint keeps it to the three roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleColumn(pub Role);

impl TryFrom<String> for RoleColumn {
    type Error = crate::domain::UnknownRole;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map(RoleColumn)
    }
}

impl User {
    pub fn role(&self) -> Role {
        self.role.0
    }
}

/// Creates a user. Only a super_admin may have no company (the database refuses otherwise).
pub async fn create_user(
    pool: &PgPool,
    company: Option<CompanyId>,
    role: Role,
    email: Option<&str>,
) -> Result<User, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO users (id, company_id, email, role) VALUES ($1, $2, $3, $4)
         RETURNING id, company_id, email, role",
    )
    .bind(UserId::new())
    .bind(company)
    .bind(email)
    .bind(role.as_str())
    .fetch_one(pool)
    .await
}

pub async fn find_user(pool: &PgPool, id: UserId) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as("SELECT id, company_id, email, role FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}
