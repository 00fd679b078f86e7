"""How mail systems word a failure, a delay and a full mailbox beyond English, and in the prose
of mailing-list managers: phrases searched in decoded text (any charset is Unicode by then).

Why phrases and not a language model: a bounce states a fixed fact in a few stock phrasings per
language, and each phrase here is one a mail system or list manager uses for that fact alone
("could not be delivered", "does not exist"), never words a person's reply is made of.
"""

from __future__ import annotations

import re

# The message failed: MTA notices in Japanese, Chinese, Korean, Russian, German, French,
# Spanish, Italian, Portuguese, Dutch, Polish; list managers refusing a posting.
FAILURE_RE = re.compile(
    r"配信(?:でき|不能|失敗|エラー|に失敗)|送信(?:でき|エラー|に失敗|失敗)|届(?:け|き)(?:られ|ることができ|ませ)"
    r"|宛先(?:不明|が見つかりません|のユーザーが見つかりません)|存在しません|不達"
    r"|退信|无法投递|無法投遞|投递失败|投遞失敗|发送失败|發送失敗|用户不存在|用戶不存在|收件人.{0,6}不存在"
    r"|전송\s*실패|전달되지\s*못|배달되지\s*않|반송되었|존재하지\s*않는"
    r"|недоставлен|не\s+(?:может\s+быть\s+)?доставлен|не\s+удалось\s+доставить|не\s+существует"
    r"|nicht\s+zugestellt|nicht\s+zustellbar|unzustellbar|zustellung\s+fehlgeschlagen"
    r"|n'a\s+pas\s+pu\s+être\s+(?:remis|délivré|distribué)|non\s+remis|échec\s+de\s+(?:la\s+)?remise"
    r"|no\s+(?:se\s+)?(?:ha\s+)?(?:podido|pudo)\s+(?:ser\s+)?entregar|no\s+entregado"
    r"|non\s+(?:è\s+stato\s+)?(?:recapitat|consegnat)|impossibile\s+recapitare"
    r"|não\s+(?:foi\s+)?(?:possível\s+)?entreg|kon\s+niet\s+(?:worden\s+)?(?:afgeleverd|bezorgd)"
    r"|nie\s+(?:został[ao]?\s+)?dostarczon|nie\s+można\s+dostarczyć"
    r"|not\s+(?:authorized|allowed|permitted)\s+to\s+(?:send|post)|(?:posting|message)[^.\n]{0,40}"
    r"(?:was\s+)?(?:not\s+accepted|rejected|refused)|was\s+not\s+accepted\s+by\s+the\s+moderator"
    r"|undeliverable|could\s+not\s+be\s+reached|cannot\s+be\s+reached",
    re.I,
)

# A delay or a full mailbox (soft), in the same languages.
SOFT_RE = re.compile(
    r"容量|一杯|いっぱい|満杯|再試行|再送信を試み|まだ配信されていません|一時的|遅延"
    r"|邮箱已满|信箱已滿|信箱已满|空间不足|空間不足|稍后重试|稍後重試|暂时|暫時|延迟|延遲"
    r"|용량\s*초과|사서함이\s*가득|일시적|지연"
    r"|переполнен|временн|задержан|повторн"
    r"|postfach\s+(?:ist\s+)?voll|speicherplatz|vorübergehend|verzögert"
    r"|boîte\s+(?:aux\s+lettres\s+)?pleine|temporaire|retardé"
    r"|buzón\s+(?:está\s+)?lleno|temporal|casella\s+piena|temporane",
    re.I,
)

# Subject prefixes of a person answering or forwarding, in the languages above (their MUAs'
# own words: 返信 / 回复 / 答复 / Ответ / 전달 ...).
REPLY_PREFIX_RE = re.compile(r"^\s*(?:返信|回复|答复|回覆|答覆|转发|轉寄|転送|Ответ|Отв|Пересл|답장|회신|전달)\s*[:：]", re.I)
