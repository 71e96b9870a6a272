//! The page, embedded in the binary so the dashboard works offline and from any directory.

/// An embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// The single page (`/`).
pub const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../../assets/index.html"),
};

/// Files under `/assets/`, by name.
pub fn get(name: &str) -> Option<Asset> {
    Some(match name {
        "app.js" => Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_bytes!("../../assets/app.js"),
        },
        "app.css" => Asset {
            content_type: "text/css; charset=utf-8",
            body: include_bytes!("../../assets/app.css"),
        },
        "favicon.svg" => Asset {
            content_type: "image/svg+xml",
            body: include_bytes!("../../assets/favicon.svg"),
        },
        _ => return None,
    })
}
