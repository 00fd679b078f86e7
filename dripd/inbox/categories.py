"""What a reply says, as one category, by rules in English, German, French and Spanish. Pure.

The rules read the reply's new text (quotes already stripped: the quoted email is ours, and its
words are not the contact's). Text is lowercased and its accents folded, so "désinscrire" and a
hurried "desinscrire" read the same. The first category whose rules match wins, in this order:
an opt-out outranks everything (bulk-sender rules require honouring it however it is phrased),
someone who left the company outranks their out-of-office text, and "not interested" is read
before "interested" because the one contains the other.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass


class Category(enum.StrEnum):
    INTERESTED = "interested"
    NOT_INTERESTED = "not_interested"
    OUT_OF_OFFICE = "out_of_office"
    UNSUBSCRIBE_REQUEST = "unsubscribe_request"
    WRONG_PERSON = "wrong_person"  # wrong person, or a referral to someone else
    OTHER = "other"


@dataclass(frozen=True)
class Verdict:
    category: Category
    rule: str  # which rule matched ("de:unsubscribe_request"), or why none did


def _rules(**by_language: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((language, re.compile(pattern)) for language, pattern in by_language.items())


_UNSUBSCRIBE = _rules(
    en=r"\bunsubscrib|\bremove (me|us|my (e-?mail|address|name|details))\b|\btake (me|us|my \w+) off\b"
       r"|\bopt(ing)?[- ]?(me )?out\b|\bstop (e-?mailing|mailing|contacting|sending|writing)\b"
       r"|\b(don'?t|do not|never) (e-?mail|contact|write to|message) (me|us)\b|\bno (more|further) e-?mails\b"
       r"|\boff (of )?your (mailing |e-?mail )?lists?\b|\b(delete|erase) (my|our) (data|details|e-?mail|address|contact)",
    de=r"\babmelden\b|\babbestellen\b|\baustragen\b|\b(aus|von) (ihrem|ihrer|dem|der|eurem|eurer|deinem|deiner)"
       r" (verteiler|liste|mailingliste|e-?mail-?liste)|\bkeine (weiteren |e-?mails? )?(e-?mails|mails|nachrichten)\b"
       r"|\bnicht mehr (kontaktieren|anschreiben|an(zu)?schreiben|schreiben|zu kontaktieren)\b"
       r"|\b(entfernen|loschen|streichen) sie (mich|meine|uns)\b|\bmeine daten\b.{0,40}\bloschen\b",
    fr=r"\bdesinscri|\bdesabonn|\b(retirez|supprimez|enlevez|rayez)[- ](moi|nous)\b"
       r"|\bne (plus )?(me|nous) (contactez|recontactez|ecrivez|sollicitez) plus\b|\bne plus (me|nous) (contacter|ecrire|solliciter)\b"
       r"|\bne (souhaite|veux) plus (recevoir|etre contacte)|\bplus de (mails|e-?mails|messages) (de votre part|s'il)"
       r"|\bde votre (liste|fichier|base)\b",
    es=r"\bdar(me|nos)? de baja\b|\bden(me)? de baja\b|\b(eliminen|borren|quiten|saquen)(me|nos)\b"
       r"|\b(eliminar|borrar|quitar|sacar)(me|nos)? de (su|la|vuestra) (lista|base)"
       r"|\bno (me|nos) (vuelva|vuelvan)n? a (escribir|contactar)|\bno (me|nos) (contacte|contacten|escriba|escriban|envie|envien)\b"
       r"|\bno (quiero|deseo|queremos) recibir|\bdejen? de (escribir|enviar|contactar)",
)
# Someone gone for good: their auto-reply often reads like an out-of-office one.
_DEPARTED = _rules(
    en=r"\bno longer (with|at|works?|working|employed|part of)\b|\b(has|have) left (the company|\w+ (inc|ltd|gmbh))"
       r"|\bi (have )?left (the company|\w+)\b.{0,40}\b(contact|reach)",
    de=r"\bnicht mehr (bei|im unternehmen|fur (die|das|uns) \w+ tatig|in unserem unternehmen)\b"
       r"|\b(hat|habe) (das unternehmen|die firma|uns) verlassen\b|\bist (nicht mehr|ausgeschieden)",
    fr=r"\bne (fait|travaille) plus (partie|chez|pour|au sein)\b|\ba quitte (la societe|l'entreprise|le groupe|\w+)\b",
    es=r"\bya no (trabaja|trabajo|forma parte|esta en|estoy en)\b|\b(dejo|ha dejado|he dejado) la (empresa|compania)\b",
)
_OUT_OF_OFFICE = _rules(
    en=r"\bout of (the )?office\b|\bon (annual |parental |maternity |paternity |sick |medical )?leave\b"
       r"|\bon (vacation|holiday|holidays|pto)\b|\baway (from (the office|my desk)|until|till)\b"
       r"|\blimited access to (my )?e-?mail|\b(i will|i'll) be back\b|\bback in the office\b|\bautomatic reply\b",
    de=r"\babwesenheit|\bnicht im (buro|haus)\b|\bausser haus\b|\bim urlaub\b|\burlaubsbedingt\b|\bin elternzeit\b"
       r"|\beingeschrankt erreichbar\b|\bwieder (im buro|erreichbar|da|zuruck)\b|\bkeinen zugriff auf (meine )?e-?mails",
    fr=r"\babsente? (du bureau|jusqu|du \d)|\ben (conges?|vacances)\b|\bde retour (le|au bureau|lundi|mardi|mercredi|jeudi|vendredi)\b"
       r"|\bacces limite\b|\bmessage d'absence\b|\breponse automatique\b",
    es=r"\bfuera de (la )?oficina\b|\bde vacaciones\b|\bausente\b|\bestare de (vuelta|regreso)\b|\b(regresare|volvere)\b"
       r"|\bacceso limitado\b|\brespuesta automatica\b|\bde (baja|permiso) (por|de) (maternidad|paternidad|enfermedad)",
)
_WRONG_PERSON = _rules(
    en=r"\bwrong (person|contact|guy|department)\b|\bnot the (right|best|correct|appropriate) (person|contact|guy)"
       r"|\b(reach out|talk|speak|write) to (my colleague|\w+ (at|@)|\S+@)|\b(please )?contact (my colleague|\S+@)"
       r"|\b(is|would be) (the )?(right|best|better|correct) (person|contact|one)\b|\blooping in\b|\b(cc|cc'?ing|cc'?d)\b"
       r"|\bforward(ed|ing)? (this|your (e-?mail|message|note)) to\b|\bnot (my|in my) (area|department|remit|role)\b"
       r"|\bin charge of (this|that|these|purchasing|it)\b|\b(he|she|they) (handles?|owns?|looks? after)\b",
    de=r"\bfalsche(n|r)? (ansprechpartner|person|adresse)|\bnicht (der|die) (richtige|passende)\b|\bnicht zustandig\b"
       r"|\bwenden sie sich (bitte )?an\b|\b(ist|ware) (der|die) (richtige|bessere) (ansprechpartner|person)"
       r"|\b(ansprechpartner|ansprechpartnerin) (ist|dafur|hierfur|fur)|\b(an|meine[mn]?) (kolleg(e|in|en))\b.{0,40}\bweiter"
       r"|\bzustandig (ist|dafur|hierfur)|\bmeine kolleg(in|e)\b",
    fr=r"\bpas (la|le) (bonne|bon) (personne|interlocuteur|contact)\b|\bne suis pas (la personne|en charge|concerne)"
       r"|\b(contactez|adressez-vous a|ecrivez a) (plutot )?(mon|ma|notre) (collegue|responsable)\b|\bmon collegue\b|\bma collegue\b"
       r"|\bla (bonne )?personne (a contacter|en charge)\b|\binterlocuteur\b|\btransmis (votre|ce) (message|mail|e-?mail)",
    es=r"\bpersona (equivocada|incorrecta)\b|\bno soy (la persona|el responsable|quien)\b|\b(mi|nuestro|nuestra) (companer[oa]|colega)\b"
       r"|\b(pongase|ponte|pongan?se) en contacto con\b|\bla persona (indicada|adecuada|encargada|responsable)\b|\bhe reenviado\b"
       r"|\b(hable|escriba) (con|a) \w+",
)
_NOT_INTERESTED = _rules(
    en=r"\bnot (interested|a (good )?fit|for us|looking|in the market|a priority)\b|\bno interest\b|\bno,? thanks?\b|\bno,? thank you\b"
       r"|\b(we'?re|we are|i'?m|i am) (all )?(set|good|covered)\b|\balready (have|use|using|work with|working with|signed)\b"
       r"|\bno need\b|\b(don'?t|do not) need\b|\b(we'?ll|we will|i'?ll|i will) pass\b|\bpass on this\b|\bno budget\b"
       r"|\bnot (right )?now\b|\bnot at (this|the moment)\b|\bnot this (year|quarter)\b|\bplease don'?t follow up\b|\bno thanks\b",
    de=r"\bkein(e|en)? (interesse|bedarf)\b|\bnicht interessiert\b|\bnein,? danke\b|\bbrauchen wir nicht\b|\b(derzeit|aktuell|momentan|zurzeit) nicht\b"
       r"|\b(haben|nutzen|verwenden) (bereits|schon)\b|\bpasst (leider )?nicht\b|\bnicht relevant\b|\bkein thema\b|\bsehen wir keinen\b",
    fr=r"\bpas (interesse|interessee|interesses|d'interet|besoin|pour (nous|le moment)|le moment|pertinent)\b|\bnon,? merci\b"
       r"|\baucun (besoin|interet)\b|\b(nous avons|on a|j'ai) deja\b|\bne (sommes|suis) pas interesse|\bne nous interesse pas\b",
    es=r"\bno (estoy|estamos) interesad|\bno (me|nos) interesa\b|\bno,? gracias\b|\bno (necesitamos|necesito)\b"
       r"|\bya (tenemos|contamos con|usamos|trabajamos con)\b|\bno es (el momento|para nosotros|prioridad)\b|\bpor ahora no\b"
       r"|\bde momento no\b|\bsin interes\b",
)
_INTERESTED = _rules(
    en=r"\binterest(ed|ing)\b|\bsounds (good|great|interesting)\b|\blet'?s (talk|chat|meet|connect|set up|schedule|do it|find a time|hop on)"
       r"|\b(book|schedule|set up|arrange) (a|some) (call|meeting|demo|time)\b|\b(send|share) (me |us )?(more )?(info|information|details|pricing|the deck)"
       r"|\btell me more\b|\b(happy|glad|keen) to (chat|talk|meet|connect|learn|hear)\b|\blove to (learn|hear|chat|see|talk)\b"
       r"|\b(give me|call me)\b.{0,20}\bcall\b|\bcall me\b|\bwhat (does|is|would) (it|the pricing|the price|this) cost|\bhow much\b|\bpricing\b"
       r"|\bare you (free|available)\b|\b(works|work) for me\b|\bcalendar link\b|\b(a|the) demo\b|\bwhen can we\b",
    de=r"\binteressiert\b|\binteresse (an|daran|haben)\b|\bklingt (gut|spannend|interessant)\b|\bgerne?\b.{0,40}\b(termin|telefonat|gesprach|call|demo|austausch)"
       r"|\b(lassen sie uns|lass uns) (sprechen|telefonieren|reden)|\brufen sie mich\b|\bmehr (infos|informationen|details)\b"
       r"|\b(schicken|senden) sie mir\b|\bwann (passt|haben sie zeit|hatten sie zeit)|\bwas kostet\b|\bpreise?\b|\bangebot\b",
    fr=r"\binteresse|\bm'interesse\b|\bvolontiers\b|\bavec plaisir\b|\b(un |une )?(appel|rendez-vous|rdv|echange|demo|visio)\b"
       r"|\b(quand|quelles?) (etes-vous|seriez-vous|sont vos) (disponible|dispo)|\bdisponible\b|\benvoyez-moi\b|\bplus d'informations\b"
       r"|\bparlons\b|\b(quel|quels) (est le |sont les )?(prix|tarifs?)\b|\btarifs?\b|\bcela me parle\b",
    es=r"\binteresad[oa]s?\b|\b(me|nos) interesa\b|\bsuena (bien|interesante)\b|\b(una )?(llamada|reunion|demo|videollamada)\b"
       r"|\bhablemos\b|\bcuando (podemos|puede|tiene|le viene)\b|\b(envieme|enviame|mandame|mandeme)\b|\bmas informacion\b"
       r"|\bprecios?\b|\bcon gusto\b|\bme encantaria\b|\bagendar\b",
)

_ORDER: tuple[tuple[Category, tuple[tuple[str, re.Pattern[str]], ...]], ...] = (
    (Category.UNSUBSCRIBE_REQUEST, _UNSUBSCRIBE),
    (Category.WRONG_PERSON, _DEPARTED),
    (Category.OUT_OF_OFFICE, _OUT_OF_OFFICE),
    (Category.WRONG_PERSON, _WRONG_PERSON),
    (Category.NOT_INTERESTED, _NOT_INTERESTED),
    (Category.INTERESTED, _INTERESTED),
)


def fold(text: str) -> str:
    """Lowercase, accents folded, typographic apostrophes plain: what the rules are written in."""
    text = text.replace("ß", "ss").replace("\u2019", "'").replace("\u2018", "'")
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def categorize(text: str, *, auto_reply: bool = False, subject: str = "") -> Verdict:
    """The category of a reply's new text; an auto-reply with no other sign is out of office."""
    folded = fold(text)
    subject_folded = fold(subject)
    for category, rules in _ORDER:
        for language, pattern in rules:
            if pattern.search(folded) or (category is Category.OUT_OF_OFFICE and pattern.search(subject_folded)):
                return Verdict(category, f"{language}:{category.value}")
    if auto_reply:
        return Verdict(Category.OUT_OF_OFFICE, "auto-reply")
    return Verdict(Category.OTHER, "no rule matched")
