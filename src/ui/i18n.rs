//! The dashboard's two languages. English and Russian texts are two values of one struct, so a text missing
//! in either language does not compile. The language is the visitor's choice (a cookie set by the switch in
//! the header), else the first of the two in the browser's `Accept-Language`, else English.

use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::http::header::ACCEPT_LANGUAGE;
use axum::response::Response;
use serde::Deserialize;

use super::session::{cookie_value, is_local, see_other, set_cookie};

pub const LANG_COOKIE: &str = "leadrouter_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(chosen) = cookie_value(headers, LANG_COOKIE).and_then(Lang::parse) {
            return chosen;
        }
        headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .and_then(preferred)
            .unwrap_or(Lang::En)
    }

    fn parse(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Ru,
            Lang::Ru => Lang::En,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Ru => &RU,
        }
    }

    /// The words for one of the API's codes (availability, reasons, strategies, statuses); the code itself
    /// when it has none.
    pub fn code_name(self, code: &str) -> &str {
        let ru = self == Lang::Ru;
        match (code, ru) {
            ("available", false) => "available",
            ("available", true) => "на месте",
            ("away", false) => "away",
            ("away", true) => "отошёл",
            ("offline", false) => "offline",
            ("offline", true) => "не в сети",
            ("inactive", false) => "inactive",
            ("inactive", true) => "выключен",
            ("off_shift", false) => "off shift",
            ("off_shift", true) => "не в смене",
            ("time_off", false) => "time off",
            ("time_off", true) => "отгул",
            ("full", false) => "full",
            ("full", true) => "нет мест",
            ("declined", false) => "declined",
            ("declined", true) => "отказался",
            ("creation", false) => "new contact",
            ("creation", true) => "новый контакт",
            ("queue", false) => "from the queue",
            ("queue", true) => "из очереди",
            ("sticky", false) => "returning lead",
            ("sticky", true) => "вернувшийся лид",
            ("accept_timeout", false) => "accept timeout",
            ("accept_timeout", true) => "не принят вовремя",
            ("operator_unavailable", false) => "operator left",
            ("operator_unavailable", true) => "оператор ушёл",
            ("weighted_random", false) => "weighted random",
            ("weighted_random", true) => "случайно по весам",
            ("smooth_weighted", false) => "smooth weighted",
            ("smooth_weighted", true) => "ровно по весам",
            ("least_loaded", false) => "least loaded",
            ("least_loaded", true) => "наименее загруженный",
            ("active", false) => "active",
            ("active", true) => "в работе",
            ("closed", false) => "closed",
            ("closed", true) => "закрыт",
            ("manual", false) => "by hand",
            ("manual", true) => "вручную",
            ("operator_deleted", false) => "operator deleted",
            ("operator_deleted", true) => "оператор удалён",
            // History events.
            ("created", false) => "created",
            ("created", true) => "создан",
            ("assigned", false) => "assigned",
            ("assigned", true) => "назначен",
            ("unassigned", false) => "unassigned",
            ("unassigned", true) => "снят с оператора",
            ("status_changed", false) => "status changed",
            ("status_changed", true) => "статус изменён",
            ("accepted", false) => "accepted",
            ("accepted", true) => "принят",
            _ => code,
        }
    }
}

/// The first of English and Russian in an `Accept-Language` list, by weight (`ru-RU,ru;q=0.9,en;q=0.8`).
fn preferred(header: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for item in header.split(',') {
        let mut parts = item.trim().split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let weight = parts
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or_default();
        if let Some(lang) = Lang::parse(primary)
            && best.is_none_or(|(w, _)| weight > w)
        {
            best = Some((weight, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

#[derive(Debug, Deserialize)]
pub struct Back {
    back: Option<String>,
}

/// `GET /ui/lang/{code}?back=…`: remembers the choice for a year and goes back to the page.
pub async fn switch(Path(code): Path<String>, Query(query): Query<Back>) -> Response {
    let back = query
        .back
        .as_deref()
        .filter(|b| is_local(b))
        .unwrap_or("/ui/");
    let mut response = see_other(back);
    if let Some(lang) = Lang::parse(&code) {
        let cookie = format!(
            "{LANG_COOKIE}={}; SameSite=Strict; Path=/; Max-Age=31536000",
            lang.code()
        );
        set_cookie(&mut response, &cookie);
    }
    response
}

pub struct Texts {
    pub language_name: &'static str,
    pub switch_language: &'static str,
    pub skip_to_content: &'static str,
    pub nav_now: &'static str,
    pub nav_contacts: &'static str,
    pub nav_operators: &'static str,
    pub nav_sources: &'static str,
    pub nav_webhooks: &'static str,
    pub nav_keys: &'static str,
    pub nav_me: &'static str,
    pub sign_out: &'static str,
    pub open_banner: &'static str,
    pub read_only_banner: &'static str,
    pub live: &'static str,
    pub reconnecting: &'static str,
    pub sign_in_title: &'static str,
    pub sign_in_label: &'static str,
    pub sign_in_button: &'static str,
    pub sign_in_hint: &'static str,
    pub sign_in_unknown_key: &'static str,
    pub sign_in_operator_gone: &'static str,
    pub sign_in_ingest_key: &'static str,
    pub refused: &'static str,
    pub not_found: &'static str,
    pub waiting: &'static str,
    pub oldest_wait: &'static str,
    pub accepting_of_total: &'static str,
    pub free_slots: &'static str,
    pub routed_today: &'static str,
    pub operators: &'static str,
    pub name: &'static str,
    pub availability: &'static str,
    pub since: &'static str,
    pub load: &'static str,
    pub oldest_active: &'static str,
    pub assigned_today: &'static str,
    pub actions: &'static str,
    pub activate: &'static str,
    pub deactivate: &'static str,
    pub max_load: &'static str,
    pub save: &'static str,
    pub accepting: &'static str,
    pub not_accepting: &'static str,
    pub sources: &'static str,
    pub strategy: &'static str,
    pub weight: &'static str,
    pub target_share: &'static str,
    pub actual_today: &'static str,
    pub actual_all_time: &'static str,
    pub share_chart: &'static str,
    pub queue: &'static str,
    pub eta: &'static str,
    pub no_eta: &'static str,
    pub why_it_waits: &'static str,
    pub assign: &'static str,
    pub assign_to: &'static str,
    pub nobody_waits: &'static str,
    pub contact: &'static str,
    pub waiting_since: &'static str,
    pub feed: &'static str,
    pub skipped: &'static str,
    pub nobody_free: &'static str,
    pub no_decisions: &'static str,
    pub slots_of: &'static str,
    pub slots: &'static str,
    pub accept: &'static str,
    pub decline: &'static str,
    pub close: &'static str,
    pub my_contacts: &'static str,
    pub no_contacts: &'static str,
    pub status: &'static str,
    pub message: &'static str,
    pub lead: &'static str,
    pub created: &'static str,
    pub new_contact: &'static str,
    pub enable_notifications: &'static str,
    pub export_csv: &'static str,
    pub filter: &'static str,
    pub source: &'static str,
    pub operator: &'static str,
    pub from: &'static str,
    pub until: &'static str,
    pub any: &'static str,
    pub unassigned: &'static str,
    pub decisions: &'static str,
    pub history: &'static str,
    pub candidates: &'static str,
    pub excluded: &'static str,
    pub probability: &'static str,
    pub reason: &'static str,
    pub event: &'static str,
    pub chosen: &'static str,
    pub new_operator: &'static str,
    pub new_source: &'static str,
    pub create: &'static str,
    pub is_active: &'static str,
    pub timezone: &'static str,
    pub shifts: &'static str,
    pub always_on_shift: &'static str,
    pub time_off: &'static str,
    pub add_time_off: &'static str,
    pub starts: &'static str,
    pub ends: &'static str,
    pub description: &'static str,
    pub sticky_hours: &'static str,
    pub accept_timeout: &'static str,
    pub weights: &'static str,
    pub link_operator: &'static str,
    pub unlink: &'static str,
    pub simulator: &'static str,
    pub simulate: &'static str,
    pub simulated_share: &'static str,
    pub contacts_count: &'static str,
    pub capacity_current: &'static str,
    pub capacity_ignore: &'static str,
    pub webhooks: &'static str,
    pub new_webhook: &'static str,
    pub url: &'static str,
    pub events: &'static str,
    pub secret: &'static str,
    pub delete: &'static str,
    pub keys: &'static str,
    pub keys_hint: &'static str,
    pub scope: &'static str,
    pub revoked: &'static str,
    pub live_key: &'static str,
    pub none: &'static str,
    pub all_time: &'static str,
    pub today: &'static str,
    pub edit: &'static str,
    pub open_contact: &'static str,
}

pub static EN: Texts = Texts {
    language_name: "English",
    switch_language: "Русский",
    skip_to_content: "Skip to content",
    nav_now: "Now",
    nav_contacts: "Contacts",
    nav_operators: "Operators",
    nav_sources: "Sources",
    nav_webhooks: "Webhooks",
    nav_keys: "Keys",
    nav_me: "My contacts",
    sign_out: "Sign out",
    open_banner: "No API key exists yet: anyone who can reach this server sees and changes everything. \
                  Create one with `leadrouter keys create`.",
    read_only_banner: "Signed in with a read key: you see everything and can change nothing.",
    live: "Live",
    reconnecting: "Reconnecting…",
    sign_in_title: "Sign in",
    sign_in_label: "API key",
    sign_in_button: "Sign in",
    sign_in_hint: "An admin, read or operator key. It is exchanged for a session; the key itself is not kept \
                   in the browser.",
    sign_in_unknown_key: "Unknown or revoked key.",
    sign_in_operator_gone: "This key's operator has been deleted.",
    sign_in_ingest_key: "An ingest key has nothing to show here: sign in with an admin, read or operator key.",
    refused: "This page is not for this key.",
    not_found: "Not found.",
    waiting: "Waiting",
    oldest_wait: "Oldest wait",
    accepting_of_total: "Accepting",
    free_slots: "Free slots",
    routed_today: "Arrived today",
    operators: "Operators",
    name: "Name",
    availability: "Availability",
    since: "since",
    load: "Load",
    oldest_active: "Oldest active",
    assigned_today: "Assigned today",
    actions: "Actions",
    activate: "Activate",
    deactivate: "Deactivate",
    max_load: "Max load",
    save: "Save",
    accepting: "accepting",
    not_accepting: "not accepting",
    sources: "Sources",
    strategy: "Strategy",
    weight: "Weight",
    target_share: "Target",
    actual_today: "Actual today",
    actual_all_time: "Actual, all time",
    share_chart: "Target and actual share per operator",
    queue: "Queue",
    eta: "ETA",
    no_eta: "no estimate yet",
    why_it_waits: "Why it waits",
    assign: "Assign",
    assign_to: "Assign to",
    nobody_waits: "Nobody waits.",
    contact: "Contact",
    waiting_since: "Waiting since",
    feed: "Latest decisions",
    skipped: "skipped",
    nobody_free: "nobody free",
    no_decisions: "No decisions yet.",
    slots_of: "of",
    slots: "slots",
    accept: "Accept",
    decline: "Decline",
    close: "Close",
    my_contacts: "My contacts",
    no_contacts: "No contacts.",
    status: "Status",
    message: "Message",
    lead: "Lead",
    created: "Created",
    new_contact: "New contact",
    enable_notifications: "Notify me of new contacts",
    export_csv: "Download CSV",
    filter: "Filter",
    source: "Source",
    operator: "Operator",
    from: "From",
    until: "Until",
    any: "any",
    unassigned: "unassigned",
    decisions: "Decisions",
    history: "History",
    candidates: "Candidates",
    excluded: "Excluded",
    probability: "Probability",
    reason: "Reason",
    event: "Event",
    chosen: "Chosen",
    new_operator: "New operator",
    new_source: "New source",
    create: "Create",
    is_active: "Active",
    timezone: "Time zone",
    shifts: "Shifts",
    always_on_shift: "always on shift",
    time_off: "Time off",
    add_time_off: "Add time off",
    starts: "Starts",
    ends: "Ends",
    description: "Description",
    sticky_hours: "Returning leads go to their operator for (hours)",
    accept_timeout: "Accept timeout (seconds)",
    weights: "Weights",
    link_operator: "Link an operator",
    unlink: "Unlink",
    simulator: "Expected split",
    simulate: "Simulate",
    simulated_share: "Simulated",
    contacts_count: "Contacts",
    capacity_current: "from current loads",
    capacity_ignore: "ignoring capacity",
    webhooks: "Webhooks",
    new_webhook: "New webhook",
    url: "URL",
    events: "Events",
    secret: "Secret",
    delete: "Delete",
    keys: "API keys",
    keys_hint: "Keys are created and revoked on the server: `leadrouter keys create`, `leadrouter keys revoke`.",
    scope: "Scope",
    revoked: "revoked",
    live_key: "live",
    none: "none",
    all_time: "all time",
    today: "today",
    edit: "Edit",
    open_contact: "Open",
};

pub static RU: Texts = Texts {
    language_name: "Русский",
    switch_language: "English",
    skip_to_content: "К содержимому",
    nav_now: "Сейчас",
    nav_contacts: "Контакты",
    nav_operators: "Операторы",
    nav_sources: "Источники",
    nav_webhooks: "Вебхуки",
    nav_keys: "Ключи",
    nav_me: "Мои контакты",
    sign_out: "Выйти",
    open_banner: "Ключей API ещё нет: любой, кто может открыть этот сервер, всё видит и может изменить. \
                  Создайте ключ: `leadrouter keys create`.",
    read_only_banner: "Вход с ключом read: видно всё, изменить ничего нельзя.",
    live: "Онлайн",
    reconnecting: "Переподключение…",
    sign_in_title: "Вход",
    sign_in_label: "Ключ API",
    sign_in_button: "Войти",
    sign_in_hint: "Ключ admin, read или operator. Он обменивается на сессию; сам ключ в браузере не хранится.",
    sign_in_unknown_key: "Неизвестный или отозванный ключ.",
    sign_in_operator_gone: "Оператор этого ключа удалён.",
    sign_in_ingest_key: "Ключу ingest здесь нечего показать: войдите с ключом admin, read или operator.",
    refused: "Эта страница недоступна с этим ключом.",
    not_found: "Не найдено.",
    waiting: "Ожидают",
    oldest_wait: "Дольше всех ждёт",
    accepting_of_total: "Принимают",
    free_slots: "Свободных мест",
    routed_today: "Пришло сегодня",
    operators: "Операторы",
    name: "Имя",
    availability: "Доступность",
    since: "с",
    load: "Нагрузка",
    oldest_active: "Самый давний активный",
    assigned_today: "Назначено сегодня",
    actions: "Действия",
    activate: "Включить",
    deactivate: "Выключить",
    max_load: "Макс. нагрузка",
    save: "Сохранить",
    accepting: "принимает",
    not_accepting: "не принимает",
    sources: "Источники",
    strategy: "Стратегия",
    weight: "Вес",
    target_share: "Цель",
    actual_today: "Факт сегодня",
    actual_all_time: "Факт за всё время",
    share_chart: "Целевая и фактическая доля каждого оператора",
    queue: "Очередь",
    eta: "Ожидание",
    no_eta: "оценки пока нет",
    why_it_waits: "Почему ждёт",
    assign: "Назначить",
    assign_to: "Назначить на",
    nobody_waits: "Никто не ждёт.",
    contact: "Контакт",
    waiting_since: "Ждёт с",
    feed: "Последние решения",
    skipped: "пропущены",
    nobody_free: "никого свободного",
    no_decisions: "Решений пока нет.",
    slots_of: "из",
    slots: "мест",
    accept: "Принять",
    decline: "Отказаться",
    close: "Закрыть",
    my_contacts: "Мои контакты",
    no_contacts: "Контактов нет.",
    status: "Статус",
    message: "Сообщение",
    lead: "Лид",
    created: "Создан",
    new_contact: "Новый контакт",
    enable_notifications: "Уведомлять о новых контактах",
    export_csv: "Скачать CSV",
    filter: "Показать",
    source: "Источник",
    operator: "Оператор",
    from: "С",
    until: "По",
    any: "любой",
    unassigned: "не назначен",
    decisions: "Решения",
    history: "История",
    candidates: "Кандидаты",
    excluded: "Исключены",
    probability: "Вероятность",
    reason: "Причина",
    event: "Событие",
    chosen: "Выбран",
    new_operator: "Новый оператор",
    new_source: "Новый источник",
    create: "Создать",
    is_active: "Активен",
    timezone: "Часовой пояс",
    shifts: "Смены",
    always_on_shift: "всегда в смене",
    time_off: "Отгулы",
    add_time_off: "Добавить отгул",
    starts: "Начало",
    ends: "Конец",
    description: "Описание",
    sticky_hours: "Вернувшийся лид идёт к своему оператору (часов)",
    accept_timeout: "Время на принятие (секунд)",
    weights: "Веса",
    link_operator: "Добавить оператора",
    unlink: "Убрать",
    simulator: "Ожидаемое распределение",
    simulate: "Рассчитать",
    simulated_share: "Расчёт",
    contacts_count: "Контактов",
    capacity_current: "с текущей нагрузкой",
    capacity_ignore: "без учёта мест",
    webhooks: "Вебхуки",
    new_webhook: "Новый вебхук",
    url: "URL",
    events: "События",
    secret: "Секрет",
    delete: "Удалить",
    keys: "Ключи API",
    keys_hint: "Ключи создаются и отзываются на сервере: `leadrouter keys create`, `leadrouter keys revoke`.",
    scope: "Права",
    revoked: "отозван",
    live_key: "действует",
    none: "нет",
    all_time: "за всё время",
    today: "сегодня",
    edit: "Изменить",
    open_contact: "Открыть",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browsers_first_language_of_ours_wins() {
        assert_eq!(preferred("ru-RU,ru;q=0.9,en;q=0.8"), Some(Lang::Ru));
        assert_eq!(preferred("de-DE,en;q=0.7,ru;q=0.5"), Some(Lang::En));
        assert_eq!(preferred("en;q=0.4,ru;q=0.6"), Some(Lang::Ru));
        assert_eq!(preferred("de"), None);
    }

    #[test]
    fn every_history_event_and_reason_has_a_russian_name() {
        use crate::store::history::{entry, reason};
        let codes = [
            entry::CREATED,
            entry::ASSIGNED,
            entry::UNASSIGNED,
            entry::STATUS_CHANGED,
            entry::ACCEPTED,
            reason::CREATION,
            reason::QUEUE,
            reason::MANUAL,
            reason::OPERATOR_DELETED,
            reason::OPERATOR_UNAVAILABLE,
            reason::STICKY,
            reason::ACCEPT_TIMEOUT,
            reason::DECLINED,
        ];
        for code in codes {
            assert_ne!(Lang::Ru.code_name(code), code, "{code}");
            assert!(!Lang::En.code_name(code).contains('_'), "{code}");
        }
    }
}
