"""The hand-over notice (個人番号カード交付通知書): the letter that tells the holder the
card is ready and what to bring to collect it (rules 4.1, 4.3)."""

from __future__ import annotations

from datetime import date

from issuance.applications.rules import State
from issuance.records.identity_documents import LIST_A, LIST_B, needs_representative
from issuance.records.queries import application_detail
from issuance.registry.dates import age_on
from issuance.reports.pdf import Letter, wareki
from issuance.storage import Transaction

_DOC_TITLES = {
    "my-number-card": "マイナンバーカード", "juki-card": "写真付き住基カード",
    "passport": "旅券", "driving-licence": "運転免許証",
    "driving-history-cert": "運転経歴証明書", "residence-card": "在留カード",
    "special-permanent-resident-cert": "特別永住者証明書",
    "disability-cert": "身体障害者手帳等", "health-insurance-card": "資格確認書等",
    "pension-book": "年金手帳", "pension-certificate": "年金証書",
    "student-id": "学生証", "employee-id": "社員証", "notification-card": "通知カード",
    "other": "その他（氏名・生年月日の記載のあるもの）",
}


class NoticeRefused(ValueError):
    """No notice for this application; `rule` names the rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def handover_letter(tx: Transaction, application_id: str, *, today: date) -> Letter:
    """The notice for a personalised card; NoticeRefused for any other state."""
    detail = application_detail(tx, application_id)
    if detail is None:
        raise NoticeRefused("W1", f"no application {application_id}")
    app, holder = detail.application, detail.holder
    if app.state is not State.PERSONALISED or holder is None:
        raise NoticeRefused("4.1", f"application {app.id} is {app.state.value}: the hand-over "
                                   "notice is written once the card is personalised and "
                                   "before it is handed over")
    card = next((c for c in detail.cards if c.state in ("issued", "active")), None)
    certs = [t for t, on in (("利用者証明用電子証明書", app.user_certificate),
                             ("署名用電子証明書", app.signing_certificate
                              and app.user_certificate)) if on]
    with_rep = needs_representative(age_on(holder.birth_date, today), holder.adult_ward)
    paragraphs = [
        "あなたの個人番号カード（マイナンバーカード）の準備ができましたのでお知らせします。",
        "この通知書と本人確認書類を持って、ご本人が窓口へお越しください。通知カード・住民基本"
        "台帳カードをお持ちの方は、あわせてお持ちください（回収します）。",
        "本人確認書類：次のうち1点 " + "、".join(_DOC_TITLES[k] for k in LIST_A)
        + "。またはこのうち2点 " + "、".join(_DOC_TITLES[k] for k in LIST_B) + "。",
        "受け取りの際に暗証番号を設定していただきます。",
    ]
    if with_rep:
        paragraphs.append("ご本人は15歳未満または成年被後見人のため、法定代理人の方が一緒に"
                          "お越しください。法定代理人の方の本人確認書類と、代理権を確認できる"
                          "書類が必要です。暗証番号は法定代理人の方が設定します。")
    return Letter(
        address=holder.address_on_certificate, name=holder.name_on_certificate, date=today,
        sender=f"市区町村長（団体コード {_municipality(tx, app.id)}）",
        title="個人番号カード交付通知書",
        paragraphs=paragraphs,
        table=[("申請番号", app.id), ("氏名", holder.name_on_certificate),
               ("生年月日", wareki(holder.birth_date)),
               ("カード番号", card.serial if card else "—"),
               ("有効期限", wareki(card.expiry) if card and card.expiry else "—"),
               ("電子証明書", "、".join(certs) or "なし"),
               ("交付申請日", wareki(app.applied_on))],
        footer=("代替文字：氏名・住所のうち表示できない文字は、電子証明書と同じ文字に置き換えて"
                "います。変更を希望される方は窓口でお申し出ください。",),
    )


def _municipality(tx: Transaction, application_id: str) -> str:
    row = tx.query_one("SELECT r.municipality_code AS m FROM applications a JOIN residents r"
                       " ON r.resident_code = a.resident_code WHERE a.id = ?",
                       (application_id,))
    return row["m"] if row else "?"
