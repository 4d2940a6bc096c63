//! The mock Twilio.

use super::*;

pub(crate) async fn mock_twilio() -> anyhow::Result<String> {
    use axum::extract::{Form, Path};
    use axum::http::StatusCode;
    async fn messages(
        Path(sid): Path<String>,
        Form(form): Form<HashMap<String, String>>,
    ) -> (StatusCode, axum::Json<serde_json::Value>) {
        let n = uuid::Uuid::new_v4().simple();
        (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({
                "sid": format!("SM{n}"),
                "account_sid": sid,
                "to": form.get("To"),
                "from": form.get("From"),
                "status": "queued",
                "num_segments": "1",
            })),
        )
    }
    let app = axum::Router::new().route(
        "/2010-04-01/Accounts/{sid}/Messages.json",
        axum::routing::post(messages),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}
