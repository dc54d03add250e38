//! The contacts list's creation-time window (`since`, `until`).

use crate::common;

use common::{assert_unprocessable, id_of, ids};

backend_test!(since_and_until_select_contacts_by_creation_time, |app| {
    // Contacts take their creation time from the system clock: the window is set around the real times.
    let source = app.source("Telegram").await;
    let mut created = Vec::new();
    for _ in 0..4 {
        created.push(app.contact_through(source).await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let at = |i: usize| created[i]["created_at"].as_str().unwrap().to_owned();
    let id = |i: usize| id_of(&created[i]);
    let cases = [
        (format!("since={}", at(1)), vec![id(3), id(2), id(1)]),
        (format!("until={}", at(2)), vec![id(1), id(0)]),
        (
            format!("since={}&until={}", at(1), at(3)),
            vec![id(2), id(1)],
        ),
        (format!("since={}&until={}", at(1), at(1)), vec![]),
        (format!("since={}&until={}", at(3), at(0)), vec![]),
        (format!("since={}&limit=1", at(0)), vec![id(3)]),
        (format!("since={}&skip=1", at(0)), vec![id(2), id(1), id(0)]),
        (format!("since={}&source_id={source}", at(3)), vec![id(3)]),
    ];
    for (query, expected) in cases {
        let listed = app.get_ok(&format!("/contacts/?{query}")).await;
        assert_eq!(ids(&listed), expected, "JSON ?{query}");
    }

    // The same instant in another offset (its `+` sent as %2B) is the same bound.
    let utc = chrono::DateTime::parse_from_rfc3339(&at(2)).unwrap();
    let offset = chrono::FixedOffset::east_opt(3 * 3600).unwrap();
    let moscow = utc
        .with_timezone(&offset)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
        .replace('+', "%2B");
    let listed = app.get_ok(&format!("/contacts/?since={moscow}")).await;
    assert_eq!(ids(&listed), vec![id(3), id(2)]);
});

backend_test!(a_bad_time_is_422_naming_its_parameter, |app| {
    for (query, parameter) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=2026-11-25T00:00:00Z&until=soon", "until"),
    ] {
        let path = format!("/contacts/?{query}");
        let answer = app.get(&path).await;
        assert_unprocessable(&answer, &path);
        let detail = answer.1["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{parameter}: ")), "{detail}");
    }
});
