"""The experts' discussion page and the result page, as their users meet them.

The discussion: both initial sheets side by side as "Expert 1/2" with the divergent criteria
marked and no other expert's identity; revisions need a reason, are kept and shown in the
history; agreement settles the review; only the review's own experts get in. The result:
after the decision the provider and the municipal viewer of the program's municipality read
the decision, final scores, comments and recommendations, anonymously; the staff may see the
names. Interface texts are asserted in English (their msgids).
"""

from __future__ import annotations

import html
import re

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from review_portal.enums import Decision, Resolution, RevisionKind
from review_portal.reconciliation import rules, services
from review_portal.reviews.services import decide_review
from review_portal.scoring.models import Score, ScoreRevision
from review_portal.workflow import ReviewState as S
from tests import factories
from tests.factories import points

#: Expert 1 scores everything 2 (20); expert 2 scores B1 and B2 with 0 (16): the totals
#: differ by 4 (20 % of 20) and B1, B2 differ by 2 points, so both are flagged.
FIRST = points(2)
SECOND = points(2, 2, 0, 0, 2)

FIRST_NOTES = {"A1": "Структура полная, замечаний нет."}
SECOND_NOTES = {
    "B1": "Актуальность не обоснована ни одним источником.",
    # Two lines stored with LF; the browser posts them back with CRLF (see form_of).
    "B2": "Задачи сформулированы расплывчато.\nНет измеримых показателей.",
}
FIRST_RECOMMENDATIONS = "Первый рецензент советует расширить список литературы."
SECOND_RECOMMENDATIONS = "Второй рецензент советует переписать пояснительную записку."


def review_of(first=FIRST, second=SECOND):
    """A review of two experts with their own comments and recommendations."""
    review, assignments = factories.scored_review(first, second, submit=False)
    notes = (FIRST_NOTES, SECOND_NOTES)
    recommendations = (FIRST_RECOMMENDATIONS, SECOND_RECOMMENDATIONS)
    for assignment, scores, comments, text in zip(
        assignments, (first, second), notes, recommendations, strict=True
    ):
        factories.submit_scores(assignment, scores, comments=comments, recommendations=text)
    return review, assignments


@pytest.fixture
def discussion(session, discussion_rubric):
    review, assignments = review_of()
    session.commit()
    assert review.rubric_id == "dop-discussion"
    assert review.state == S.RECONCILIATION and review.discussion_deadline is not None
    return review, assignments


def url(assignment) -> str:
    return f"/discussion/{assignment.id}"


def open_as(auth, client, user, path):
    auth.logout()
    assert auth.login(user).status_code == 302
    response = client.get(path)
    return response, response.get_data(as_text=True)


def stored_scores(session, assignment) -> dict[str, int | None]:
    session.expire_all()
    rows = session.execute(select(Score).where(Score.sheet_id == assignment.sheet.id)).scalars()
    return {s.criterion_id: s.value for s in rows}


def form_of(session, assignment, **changes) -> dict[str, str]:
    """The revision form as the browser posts it: every criterion with the expert's stored
    score and comment, an empty reason, then ``changes`` (``{"score-B1": "2", ...}``)."""
    session.expire_all()
    data = {}
    for score in assignment.sheet.scores:
        data[f"score-{score.criterion_id}"] = str(score.value)
        data[f"comment-{score.criterion_id}"] = score.comment.replace("\n", "\r\n")
        data[f"reason-{score.criterion_id}"] = ""
    data.update(changes)
    return data


def row(page: str, criterion: str) -> str:
    match = re.search(rf'<tr id="row-{criterion}"[^>]*>.*?</tr>', page, re.S)
    assert match, f"no row for {criterion}"
    return match.group(0)


def text_of(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def assert_no_identity_of(page: str, assignments, *, except_for=None):
    """Nothing on ``page`` names or points at these experts (but ``except_for``'s own
    assignment, whose expert is the viewer)."""
    for assignment in assignments:
        if except_for is not None and assignment.id == except_for.id:
            continue
        expert = assignment.expert
        assert expert.full_name not in page
        assert expert.email not in page
        assert f"/discussion/{assignment.id}" not in page
        assert f"/sheets/{assignment.id}" not in page
        assert f'data-assignment="{assignment.id}"' not in page
        assert f"/experts/{expert.id}" not in page
        assert f"/users/{expert.id}" not in page
    # A factory's expert is "Эксперт-Тайный Номер<seat> Фамилия<review id>".
    for assignment in assignments:
        if except_for is None or assignment.id != except_for.id:
            assert not re.search(rf"Эксперт-Тайный Номер{assignment.seat}\b", page)


# --- the discussion page ---------------------------------------------------------------------


def test_discussion_page_shows_both_sheets_anonymously_with_flagged_criteria(
    client, auth, english, discussion
):
    review, (first, second) = discussion

    response, page = open_as(auth, client, second.expert, url(second))

    assert response.status_code == 200
    assert re.search(r"<title>[^<]*Discussion of divergent scores", page)
    headers = re.findall(
        r'<th scope="col" class="expert-column[^"]*" id="expert-(\d)">([^<]*)</th>', page
    )
    assert [(n, text.strip()) for n, text in headers] == [
        ("1", "Expert 1"),
        ("2", "You (Expert 2)"),
    ]
    # Flagged criteria carry a visible marker; the others do not.
    assert "Scores diverge" in row(page, "B1") and 'class="table-warning flagged"' in row(
        page, "B1"
    )
    assert "Scores diverge" in row(page, "B2")
    assert "Scores diverge" not in row(page, "A1")
    # Each expert's score and comment per criterion, side by side.
    b1 = text_of(row(page, "B1"))
    assert "2 — выражен полностью" in b1
    assert "0 — не выражен Актуальность не обоснована ни одним источником." in b1
    assert FIRST_NOTES["A1"] in row(page, "A1")
    assert "20 of 20 points (100 %)" in text_of(row(page, "total"))
    assert "16 of 20 points (80 %)" in text_of(row(page, "total"))
    # The rules in words, the deadline, the other expert's recommendations.
    assert [r["rule"] for r in review.divergence_rules] == ["total_percent", "criterion_points"]
    with force_locale("en"):
        fired = [rules.describe_rule(r) for r in review.divergence_rules]
    listed = re.search(r'<ul id="fired-rules">(.*?)</ul>', page, re.S).group(1)
    assert [html.unescape(t) for t in re.findall(r"<li>([^<]*)</li>", listed)] == fired
    assert "4" in fired[0] and "B1, B2" in fired[1]
    # Nothing revised yet: the same reasons are not listed a second time.
    for text in fired:
        assert html.unescape(page).count(text) == 1
    assert (
        'id="current-rules">As the score sheets are now, they still diverge for the same '
        "reasons.<" in page
    )
    assert 'id="discussion-deadline">' in page and "23:59" in page
    assert FIRST_RECOMMENDATIONS in page and SECOND_RECOMMENDATIONS in page
    # The program's data and documents as on the sheet page.
    assert review.program.title in page
    assert f"/programs/{review.program.id}" in page
    assert "program.pdf" in page
    # The form on the expert's own scores, every control labelled.
    assert 'id="revise-form"' in page
    for criterion in factories.DEFAULT_CRITERIA:
        for field in (f"comment-{criterion}", f"reason-{criterion}", f"score-{criterion}-0"):
            assert f'for="{field}"' in page and f'id="{field}"' in page
    assert re.search(r'id="score-B1-0" value="0"\s+checked', page)
    assert_no_identity_of(page, [first, second], except_for=second)


def test_the_first_expert_sees_the_same_page_from_their_side(client, auth, english, discussion):
    _, (first, second) = discussion

    response, page = open_as(auth, client, first.expert, url(first))

    assert response.status_code == 200
    assert "You (Expert 1)" in page and "Expert 2" in page
    assert SECOND_NOTES["B1"] in page
    assert re.search(r'id="score-B1-2" value="2"\s+checked', page)
    assert_no_identity_of(page, [first, second], except_for=first)


def test_revision_without_a_reason_is_refused_with_the_message_and_changes_nothing(
    client, auth, english, discussion, session
):
    _, (first, second) = discussion
    before = stored_scores(session, second)
    auth.login(second.expert)

    response = auth.post(
        url(second), form_of(session, second, **{"score-B1": "2"}), token_from=url(second)
    )

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    message = re.search(r'<div class="invalid-feedback d-block" id="error-B1">([^<]*)</div>', page)
    assert message and message.group(1) == "Give the reason for this change."
    assert 'id="error-B2"' not in page
    # The posted choice is shown again, and nothing is stored.
    assert re.search(r'id="score-B1-2" value="2"\s+checked', page)
    assert stored_scores(session, second) == before
    assert session.execute(select(func.count(ScoreRevision.id))).scalar_one() == 0


def test_posting_nothing_changed_is_refused(client, auth, english, discussion, session):
    _, (first, second) = discussion
    auth.login(second.expert)

    response = auth.post(url(second), form_of(session, second), token_from=url(second))

    assert response.status_code == 400
    assert "Nothing was changed." in response.get_data(as_text=True)


def test_a_revision_is_kept_and_every_version_is_in_the_history(
    client, auth, english, discussion, session
):
    review, (first, second) = discussion
    auth.login(second.expert)

    response = auth.post(
        url(second),
        form_of(
            session,
            second,
            **{
                "score-B1": "2",
                "comment-B1": "",
                "reason-B1": "Перечитал пояснительную записку: обоснование есть.",
            },
        ),
        token_from=url(second),
    )

    assert response.status_code == 302 and response.headers["Location"].endswith(url(second))
    revision = session.execute(select(ScoreRevision)).scalar_one()
    assert (
        revision.sheet_id,
        revision.kind,
        revision.criterion_id,
        revision.old_value,
        revision.new_value,
        revision.old_comment,
        revision.new_comment,
        revision.reason,
    ) == (
        second.sheet.id,
        RevisionKind.DISCUSSION,
        "B1",
        0,
        2,
        SECOND_NOTES["B1"],
        "",
        "Перечитал пояснительную записку: обоснование есть.",
    )
    assert stored_scores(session, second)["B1"] == 2
    session.refresh(review)
    assert review.state == S.RECONCILIATION  # B2 still 0 against 2

    page = client.get(url(second)).get_data(as_text=True)
    assert "Your revised scores are saved." in page
    history = text_of(re.search(r'<table[^>]*id="revision-history".*?</table>', page, re.S)[0])
    assert "You (Expert 2) B1 Discussion 0 — не выражен → 2 — выражен полностью" in history
    assert f"Before: {SECOND_NOTES['B1']} After: —" in history
    assert "Перечитал пояснительную записку: обоснование есть." in history
    # The other expert reads the same history under the number only.
    _, other = open_as(auth, client, first.expert, url(first))
    assert "Expert 2 B1 Discussion 0 — не выражен → 2 — выражен полностью" in text_of(other)
    assert "Scores diverge" not in row(other, "B1") and "Scores diverge" in row(other, "B2")
    assert_no_identity_of(other, [first, second], except_for=first)


def test_revisions_until_the_sheets_agree_settle_the_review_by_agreement(
    client, auth, english, discussion, session
):
    review, (first, second) = discussion
    auth.login(second.expert)
    auth.post(
        url(second),
        form_of(session, second, **{"score-B1": "1", "reason-B1": "Частично согласен."}),
        token_from=url(second),
    )
    session.refresh(review)
    assert review.state == S.RECONCILIATION

    response = auth.post(
        url(second),
        form_of(session, second, **{"score-B2": "1", "reason-B2": "Задачи в целом конкретны."}),
        token_from=url(second),
    )

    assert response.status_code == 302
    session.expire_all()
    assert review.state == S.AWAITING_DECISION
    assert review.resolution == Resolution.AGREEMENT
    assert review.final_result["scores"]["B1"] == "1.50"
    assert [(r.criterion_id, r.old_value, r.new_value) for r in second.sheet.revisions] == [
        ("B1", 0, 1),
        ("B2", 0, 1),
    ]
    page = client.get(url(second)).get_data(as_text=True)
    assert "The scores are agreed" in page
    # Closed: read-only, and a late post is refused.
    assert 'id="revise-form"' not in page and "The discussion is closed" in page
    assert "Agreement reached in discussion" in page
    late = auth.post(
        url(second),
        form_of(session, second, **{"score-B1": "2", "reason-B1": "Поздно."}),
        token_from=url(second),
    )
    assert late.status_code == 403
    assert stored_scores(session, second)["B1"] == 1
    home = client.get("/expert").get_data(as_text=True)
    assert 'id="discussions"' not in home  # no open discussion left to act on
    link = re.search(rf'href="{url(second)}">[^<]*</a>\s*<small[^>]*>([^<]*)</small>', home)
    assert link and link.group(1) == "closed"


def test_an_untouched_multiline_comment_is_not_a_change(client, auth, english, discussion, session):
    _, (first, second) = discussion
    auth.login(second.expert)
    form = form_of(session, second, **{"score-B1": "1", "reason-B1": "Частично согласен."})
    assert "\r\n" in form["comment-B2"]

    response = auth.post(url(second), form, token_from=url(second))

    assert response.status_code == 302
    revisions = session.execute(select(ScoreRevision)).scalars().all()
    assert [r.criterion_id for r in revisions] == ["B1"]
    session.expire_all()
    assert {s.criterion_id: s.comment for s in second.sheet.scores}["B2"] == SECOND_NOTES["B2"]


def test_a_malformed_score_is_refused(client, auth, discussion, session):
    _, (first, second) = discussion
    auth.login(second.expert)

    response = auth.post(
        url(second),
        form_of(session, second, **{"score-B1": "два", "reason-B1": "x"}),
        token_from=url(second),
    )

    assert response.status_code == 400
    assert stored_scores(session, second)["B1"] == 0


def test_only_the_reviews_own_experts_reach_the_discussion(client, auth, discussion, session):
    review, (first, second) = discussion
    program = review.program
    outsiders = [
        factories.expert(),
        factories.ApplicantFactory(organization=program.organization),
        factories.MunicipalViewerFactory(municipality=program.municipality),
        factories.CoordinatorFactory(),
    ]
    session.commit()
    assert client.get(url(first)).status_code == 302  # anonymous: to the login page
    for user in [*outsiders, first.expert]:
        auth.logout()
        auth.login(user)
        assert client.get(url(second)).status_code == 403, user.roles
        assert auth.post(url(second), {"score-B1": "2", "reason-B1": "x"}).status_code == 403
    assert stored_scores(session, second)["B1"] == 0


def test_a_review_without_discussion_has_no_discussion_page(client, auth, session):
    review, (first, second) = factories.scored_review(FIRST, SECOND)  # default: third expert
    session.commit()
    assert review.discussion_deadline is None
    auth.login(first.expert)
    assert client.get(url(first)).status_code == 403
    assert "/discussion/" not in client.get(f"/sheets/{first.id}").get_data(as_text=True)


def test_the_sheet_page_and_the_home_page_link_to_the_discussion(client, auth, english, discussion):
    _, (first, second) = discussion
    auth.login(first.expert)

    sheet_page = client.get(f"/sheets/{first.id}").get_data(as_text=True)
    home = client.get("/expert").get_data(as_text=True)

    for page in (sheet_page, home):
        link = re.search(rf'<a[^>]*href="{url(first)}"[^>]*>([^<]*)</a>', page)
        assert link and link.group(1).startswith("Discussion of divergent scores")
        assert "open until" in page
        assert url(second) not in page


# --- the result page -------------------------------------------------------------------------


def decided(session, review, decision=None, justification=None):
    coordinator = factories.CoordinatorFactory()
    decide_review(review, coordinator, decision or review.computed_decision, justification)
    session.commit()
    return coordinator


@pytest.fixture
def agreed(session):
    """Two close sheets (20 and 19): no divergence, awaiting the decision."""
    review, assignments = review_of(FIRST, points(2, 2, 1, 2))
    session.commit()
    assert review.state == S.AWAITING_DECISION
    return review, assignments


def result_url(review) -> str:
    return f"/reviews/{review.id}/result"


def test_the_provider_reads_the_result_anonymously(client, auth, english, agreed, session):
    review, (first, second) = agreed
    decided(session, review)
    provider = factories.ApplicantFactory(organization=review.program.organization)
    session.commit()

    response, page = open_as(auth, client, provider, result_url(review))

    assert response.status_code == 200
    assert re.search(r"<title>Result of the assessment: ", page)
    assert "Recommended for inclusion in the registry" in page
    assert re.search(r'id="decision-date">\d\d\.\d\d\.\d{4}<', page)
    # Final score per criterion with its title, the total, the thresholds.
    b1 = text_of(row(page, "B1"))
    assert b1.startswith("B1. Актуальность, педагогическая целесообразность")
    assert b1.endswith("1.5")
    assert f"2 — выражен полностью 1 — выражен частично {SECOND_NOTES['B1']}" in b1
    assert "Нормативное соответствие" in page and "Содержание" in page
    assert "19.5 of 20 points (97.5 %)" in text_of(row(page, "total"))
    assert "from 70 % of the maximum" in page and "from 50 %" in page
    # The experts' comments and recommendations under their numbers only.
    assert FIRST_NOTES["A1"] in page
    assert FIRST_RECOMMENDATIONS in page and SECOND_RECOMMENDATIONS in page
    assert re.search(r'id="expert-1">\s*Expert 1', page)
    assert re.search(r'id="expert-2">\s*Expert 2', page)
    assert page.count("counted in the final score") == 2
    assert "Эксперт-Тайный" not in page
    assert_no_identity_of(page, [first, second])
    assert "МБОУ «Средняя школа № 1»" not in page  # the experts' home organization
    for assignment in (first, second):
        assert assignment.expert.expert_profile.municipality.name not in page

    program_page = client.get(f"/programs/{review.program.id}").get_data(as_text=True)
    section = re.search(r'<section class="mt-4" id="results".*?</section>', program_page, re.S)
    assert section and f'href="{result_url(review)}"' in section[0]
    assert "Recommended for inclusion in the registry" in section[0]
    assert "Эксперт-Тайный" not in program_page


def test_the_staff_may_see_the_names_on_the_result(client, auth, agreed, session):
    review, (first, second) = agreed
    coordinator = decided(session, review)

    response, page = open_as(auth, client, coordinator, result_url(review))

    assert response.status_code == 200
    assert first.expert.full_name in page and second.expert.full_name in page


def test_the_result_after_a_discussion_tells_how_it_was_settled(
    client, auth, english, discussion, session
):
    review, (first, second) = discussion
    services.revise_scores(
        second,
        second.expert,
        {
            "B1": services.ScoreChange(2, "", "Согласен."),
            "B2": services.ScoreChange(2, "", "Согласен."),
        },
    )
    decided(session, review)
    provider = factories.ApplicantFactory(organization=review.program.organization)
    session.commit()

    _, page = open_as(auth, client, provider, result_url(review))

    assert "Agreement reached in discussion" in page
    assert "20 of 20 points (100 %)" in text_of(row(page, "total"))
    assert_no_identity_of(page, [first, second])


def test_an_override_justification_is_shown(client, auth, english, agreed, session):
    review, assignments = agreed
    decided(
        session,
        review,
        Decision.REVISION_REQUIRED,
        "Программа не соответствует требованиям СанПиН к режиму занятий.",
    )
    provider = factories.ApplicantFactory(organization=review.program.organization)
    session.commit()

    _, page = open_as(auth, client, provider, result_url(review))

    assert "Sent for revision" in page
    assert "Программа не соответствует требованиям СанПиН к режиму занятий." in page
    assert_no_identity_of(page, assignments)


def test_the_result_is_hidden_before_the_decision(client, auth, agreed, session):
    review, _ = agreed
    provider = factories.ApplicantFactory(organization=review.program.organization)
    coordinator = factories.CoordinatorFactory()
    session.commit()

    for user in (provider, coordinator):
        response, _ = open_as(auth, client, user, result_url(review))
        assert response.status_code == 403
    program_page = client.get(f"/programs/{review.program.id}").get_data(as_text=True)
    assert 'id="results"' not in program_page


def test_who_reads_a_result(client, auth, agreed, session):
    review, (first, _) = agreed
    decided(session, review)
    program = review.program
    allowed = [
        factories.MunicipalViewerFactory(municipality=program.municipality),
        factories.AdminFactory(),
    ]
    refused = [
        factories.MunicipalViewerFactory(),  # another municipality
        factories.ApplicantFactory(),  # another organization
        first.expert,
        factories.expert(),
    ]
    session.commit()

    assert client.get(result_url(review)).status_code == 302
    for user in allowed:
        response, page = open_as(auth, client, user, result_url(review))
        assert response.status_code == 200
    for user in refused:
        response, _ = open_as(auth, client, user, result_url(review))
        assert response.status_code == 403
    assert client.get("/reviews/999999/result").status_code == 404


def test_a_result_with_a_third_expert_shows_which_sheets_counted(client, auth, english, session):
    from review_portal.enums import AssignmentRole, AssignmentStatus

    third_user = factories.expert(full_name="Эксперт-Тайный Номер3 Третий")
    review, (first, second) = factories.scored_review(
        factories.with_total(20), factories.with_total(10)
    )
    third = next(a for a in review.assignments if a.role == AssignmentRole.THIRD)
    assert third.expert_id == third_user.id
    third.status = AssignmentStatus.ACCEPTED
    factories.submit_scores(third, factories.with_total(19))
    assert review.state == S.AWAITING_DECISION and review.final_result["counted"] == [1, 3]
    decided(session, review)
    provider = factories.ApplicantFactory(organization=review.program.organization)
    session.commit()

    _, page = open_as(auth, client, provider, result_url(review))

    headers = {
        n: text_of(cell)
        for n, cell in re.findall(r'<th scope="col" id="expert-(\d)">(.*?)</th>', page, re.S)
    }
    assert headers == {
        "1": "Expert 1 counted in the final score",
        "2": "Expert 2 not counted in the final score",
        "3": "Expert 3 counted in the final score",
    }
    with force_locale("en"):
        rule = str(rules.FINAL_SCORE_RULES[rules.CLOSEST_PAIR_MEAN])
    assert re.search(r'id="final-method">([^<]*)<', page).group(1) == rule
    assert "A third expert was brought in" in page
    assert "19.5 of 20 points (97.5 %)" in text_of(row(page, "total"))
    assert_no_identity_of(page, [first, second, third])
