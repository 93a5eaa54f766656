"""Sequences: ordered steps (a subject, a body, a delay) that a user enrolls contacts in. Each step
is sent from the enrolling user's mailbox at its time, in one thread: steps after the first answer
step 1's Message-ID (In-Reply-To and References) and take "Re: <step 1's subject>" unless they
have a subject of their own.

Each enrollment has at most one pending ``sequence_step`` job, for its ``next_position``, due at
``next_step_at`` (step 1: its delay after enrolment; step n: its delay after step n-1 was sent).
The job claims the enrollment first (a conditional update, so two workers never send one step
twice), stores the message (``direct.start``), commits, then talks to the SMTP server.

An enrollment ends when its last step is sent (finished), or is unenrolled: on a reply or a
bounce (the poller calls ``unenroll``, finding the enrollment with ``enrollment_for_message``),
by a user, or when a step cannot be sent. A contact that bounced in this account or globally
cannot be enrolled, and an enrollment whose contact bounces meanwhile (in a marketing send, say)
ends before its next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bounceback.service import jobs
from bounceback.service.db.models import (
    Contact,
    DirectMessage,
    Enrollment,
    EnrollmentState,
    NotSentReason,
    Sequence,
    SequenceStep,
    User,
    utcnow,
)
from bounceback.service.db.session import transaction
from bounceback.service.domain import contacts, direct, mailboxes, suppression
from bounceback.service.domain.errors import Conflict, Invalid, NotFound
from bounceback.service.settings import Settings

STEP = "sequence_step"
MAX_STEPS = 20
MAX_DELAY = timedelta(days=365)
# A step the user's server could not take (down, login refused, 4xx) is tried again this many
# times, FIRST_RETRY apart at first and doubling, before the enrollment is stopped.
STEP_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=5)
CLAIM_SHARE = 0.9  # of the job lease: a worker that dies mid-step frees the enrollment first
BOUNCE_REASONS = frozenset({NotSentReason.ACCOUNT_BOUNCE, NotSentReason.GLOBAL_BOUNCE})
ENDED_BY_UNENROLL = frozenset(
    {EnrollmentState.REPLIED, EnrollmentState.BOUNCED, EnrollmentState.STOPPED}
)


@dataclass(frozen=True)
class StepInput:
    subject: str  # may be empty after step 1: "Re: <step 1's subject>"
    body: str
    delay_seconds: int  # after the previous step (step 1: after enrolment)


class EnrollRefused(Conflict):
    """The contact bounced (in this account or globally): ``reason`` says which."""

    def __init__(self, message: str, reason: NotSentReason) -> None:
        super().__init__(message)
        self.reason = reason


# --- sequences --------------------------------------------------------------------------------


def create_sequence(
    session: Session, account_id: int, name: str, steps: list[StepInput]
) -> Sequence:
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise Invalid("a sequence needs a name (200 characters at most)")
    if not 1 <= len(steps) <= MAX_STEPS:
        raise Invalid(f"a sequence has 1 to {MAX_STEPS} steps")
    rows = [_step(number, step) for number, step in enumerate(steps, start=1)]
    sequence = Sequence(account_id=account_id, name=name)
    session.add(sequence)
    session.flush()
    for row in rows:
        row.sequence_id = sequence.id
        session.add(row)
    session.flush()
    return sequence


def _step(position: int, given: StepInput) -> SequenceStep:
    where = f"step {position}"
    subject = " ".join(given.subject.split())
    if position == 1 and not subject:
        raise Invalid(f"{where}: the first step needs a subject")
    if len(subject) > 900:
        raise Invalid(f"{where}: the subject is too long (900 characters at most)")
    if not given.body.strip():
        raise Invalid(f"{where}: the step needs a body")
    if len(given.body) > direct.MAX_BODY:
        raise Invalid(f"{where}: the body is too long")
    if not 0 <= given.delay_seconds <= MAX_DELAY.total_seconds():
        raise Invalid(f"{where}: the delay must be between 0 and 365 days")
    return SequenceStep(
        position=position, delay_seconds=given.delay_seconds, subject=subject, body=given.body
    )


def get_sequence(session: Session, account_id: int, sequence_id: int) -> Sequence:
    sequence = session.get(Sequence, sequence_id)
    if sequence is None or sequence.account_id != account_id:
        raise NotFound("no such sequence")
    return sequence


def steps_of(session: Session, sequence_id: int) -> list[SequenceStep]:
    return list(
        session.scalars(
            select(SequenceStep)
            .where(SequenceStep.sequence_id == sequence_id)
            .order_by(SequenceStep.position)
        ).all()
    )


def list_sequences(
    session: Session, account_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[Sequence], int]:
    where = Sequence.account_id == account_id
    total = session.scalar(select(func.count()).select_from(Sequence).where(where)) or 0
    rows = session.scalars(
        select(Sequence).where(where).order_by(Sequence.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def state_counts(session: Session, account_id: int, sequence_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Enrollment.state, func.count())
        .where(Enrollment.account_id == account_id, Enrollment.sequence_id == sequence_id)
        .group_by(Enrollment.state)
    ).all()
    counts = {state.value: 0 for state in EnrollmentState}
    counts.update({EnrollmentState(state).value: n for state, n in rows})
    return counts


# --- enrollments ------------------------------------------------------------------------------


def enroll(
    session: Session,
    account_id: int,
    sequence_id: int,
    contact_id: int,
    user_id: int,
    *,
    now: datetime | None = None,
) -> Enrollment:
    """Enroll the contact; its steps will leave from ``user_id``'s mailbox. Refused (Conflict)
    when the contact bounced here or globally, is in this sequence already, or the user has no
    mailbox connected."""
    sequence = get_sequence(session, account_id, sequence_id)
    contact = contacts.get_contact(session, account_id, contact_id)
    user = session.get(User, user_id)
    if user is None or user.account_id != account_id or not user.is_active:
        raise NotFound("no such user")
    reason = suppression.not_sent_reason(session, account_id, contact.email)
    if reason in BOUNCE_REASONS:
        assert reason is not None
        raise EnrollRefused(
            f"{contact.email} cannot be enrolled: {bounced(reason)} ({reason.value})", reason
        )
    mailboxes.require_mailbox(session, account_id, user.id)
    if active_enrollment(session, account_id, sequence.id, contact.id) is not None:
        raise Conflict(f"{contact.email} is enrolled in this sequence already")
    steps = steps_of(session, sequence.id)
    if not steps:
        raise Invalid("this sequence has no steps")
    now = now or utcnow()
    enrollment = Enrollment(
        account_id=account_id,
        sequence_id=sequence.id,
        contact_id=contact.id,
        user_id=user.id,
        state=EnrollmentState.ACTIVE,
        next_position=1,
        next_step_at=now + timedelta(seconds=steps[0].delay_seconds),
    )
    session.add(enrollment)
    session.flush()
    _schedule(session, enrollment, attempt=0)
    contacts.add_timeline(
        session,
        account_id,
        contact.id,
        "enrolled",
        f"Enrolled in the sequence “{sequence.name}” by {user.email}",
        data={"enrollment_id": enrollment.id, "sequence_id": sequence.id, "user_id": user.id},
    )
    return enrollment


def bounced(reason: NotSentReason) -> str:
    if reason is NotSentReason.GLOBAL_BOUNCE:
        return "it bounced in several accounts, a global bounce"
    return "it bounced in this account"


def active_enrollment(
    session: Session, account_id: int, sequence_id: int, contact_id: int
) -> Enrollment | None:
    return session.scalar(
        select(Enrollment).where(
            Enrollment.account_id == account_id,
            Enrollment.sequence_id == sequence_id,
            Enrollment.contact_id == contact_id,
            Enrollment.state == EnrollmentState.ACTIVE,
        )
    )


def get_enrollment(session: Session, account_id: int, enrollment_id: int) -> Enrollment:
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.account_id != account_id:
        raise NotFound("no such enrollment")
    return enrollment


def list_enrollments(
    session: Session,
    account_id: int,
    *,
    sequence_id: int | None = None,
    contact_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Enrollment], int]:
    where = [Enrollment.account_id == account_id]
    if sequence_id is not None:
        where.append(Enrollment.sequence_id == get_sequence(session, account_id, sequence_id).id)
    if contact_id is not None:
        where.append(
            Enrollment.contact_id == contacts.get_contact(session, account_id, contact_id).id
        )
    total = session.scalar(select(func.count()).select_from(Enrollment).where(*where)) or 0
    rows = session.scalars(
        select(Enrollment).where(*where).order_by(Enrollment.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def unenroll(
    session: Session,
    account_id: int,
    enrollment_id: int,
    state: EnrollmentState,
    reason: str,
) -> Enrollment:
    """End an active enrollment (replied, bounced or stopped): no further step is sent. An
    enrollment that has ended already is left as it is."""
    if state not in ENDED_BY_UNENROLL:
        raise Invalid(f"unenrolling ends an enrollment as replied, bounced or stopped, not {state}")
    enrollment = get_enrollment(session, account_id, enrollment_id)
    if enrollment.state is not EnrollmentState.ACTIVE:
        return enrollment
    _end(session, enrollment, state, reason)
    return enrollment


def enrollment_for_message(session: Session, message_id: str) -> Enrollment | None:
    """The enrollment a message we sent (a sequence step) belongs to, by its Message-ID."""
    row = direct.by_message_id(session, message_id)
    if row is None or row.enrollment_id is None:
        return None
    return session.get(Enrollment, row.enrollment_id)


def _end(session: Session, enrollment: Enrollment, state: EnrollmentState, reason: str) -> None:
    enrollment.state = state
    enrollment.ended_at = utcnow()
    enrollment.next_step_at = None
    enrollment.ended_reason = reason[:2000]
    sequence = session.get(Sequence, enrollment.sequence_id)
    name = sequence.name if sequence else ""
    if state is EnrollmentState.FINISHED:
        summary = f"Finished the sequence “{name}”"
    else:
        summary = f"Unenrolled from the sequence “{name}” ({state.value}): {reason}"
    contacts.add_timeline(
        session,
        enrollment.account_id,
        enrollment.contact_id,
        "sequence_finished" if state is EnrollmentState.FINISHED else "unenrolled",
        summary,
        data={
            "enrollment_id": enrollment.id,
            "sequence_id": enrollment.sequence_id,
            "state": state.value,
            "reason": reason,
        },
    )
    session.flush()


def _schedule(session: Session, enrollment: Enrollment, attempt: int) -> None:
    position, when = enrollment.next_position, enrollment.next_step_at
    jobs.enqueue(
        session,
        STEP,
        {"enrollment_id": enrollment.id, "position": position, "attempt": attempt},
        key=f"{STEP}:{enrollment.id}:{position}:{attempt}",
        run_at=when,
    )


# --- the sequence_step job --------------------------------------------------------------------


def run_step(factory: sessionmaker[Session], settings: Settings, payload: dict[str, Any]) -> None:
    """Send one step of one enrollment, then schedule the next (or end the enrollment)."""
    enrollment_id, position = int(payload["enrollment_id"]), int(payload["position"])
    attempt = int(payload.get("attempt", 0))
    with transaction(factory) as session:
        prepared = _prepare_step(session, settings, enrollment_id, position)
    if prepared is None:
        return
    result = direct.transmit(prepared)
    with transaction(factory) as session:
        row = direct.settle(session, prepared.direct_id, result, prepared.server.name)
        _after_step(session, enrollment_id, position, attempt, row)


def _prepare_step(
    session: Session, settings: Settings, enrollment_id: int, position: int
) -> direct.Prepared | None:
    enrollment = _claim(session, settings, enrollment_id, position)
    if enrollment is None:
        return None
    steps = {s.position: s for s in steps_of(session, enrollment.sequence_id)}
    step = steps.get(position)
    if step is None:
        _end(session, enrollment, EnrollmentState.FINISHED, "no more steps")
        return None
    contact = session.get(Contact, enrollment.contact_id)
    assert contact is not None
    reason = suppression.not_sent_reason(session, enrollment.account_id, contact.email)
    if reason in BOUNCE_REASONS:
        assert reason is not None
        _end(session, enrollment, EnrollmentState.BOUNCED, bounced(reason))
        return None
    if mailboxes.get_mailbox(session, enrollment.account_id, enrollment.user_id) is None:
        _end(session, enrollment, EnrollmentState.STOPPED, "the sender's mailbox is disconnected")
        return None
    row = _pending_row(session, enrollment) or direct.start(
        session,
        enrollment.account_id,
        enrollment.user_id,
        contact.id,
        subject=step_subject(step, steps[1]),
        body=step.body,
        enrollment_id=enrollment.id,
        in_reply_to=enrollment.thread_message_id if position > 1 else "",
    )
    if position == 1:
        enrollment.thread_message_id = row.message_id
    return direct.prepare(session, settings, row)


def step_subject(step: SequenceStep, first: SequenceStep) -> str:
    """The step's own subject, or "Re: " and step 1's (a reply in the same thread)."""
    if step.subject:
        return step.subject
    if first.subject.lower().startswith("re:"):
        return first.subject
    return f"Re: {first.subject}"


def _claim(
    session: Session, settings: Settings, enrollment_id: int, position: int
) -> Enrollment | None:
    """Take the enrollment's step for sending, or None when it is not this job's to send."""
    enrollment = session.get(Enrollment, enrollment_id)
    if (
        enrollment is None
        or enrollment.state is not EnrollmentState.ACTIVE
        or enrollment.next_position != position
    ):
        return None
    now = utcnow()
    lease = timedelta(seconds=settings.job_lease_seconds) * CLAIM_SHARE
    taken = session.execute(
        update(Enrollment)
        .where(
            Enrollment.id == enrollment_id,
            Enrollment.state == EnrollmentState.ACTIVE,
            Enrollment.next_position == position,
            or_(Enrollment.next_step_at.is_(None), Enrollment.next_step_at <= now),
        )
        .values(next_step_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        # Not due yet (a job run early) or another worker has it: look again when it is due.
        session.refresh(enrollment)
        if enrollment.next_step_at is not None:
            jobs.enqueue(
                session,
                STEP,
                {"enrollment_id": enrollment_id, "position": position, "attempt": 0},
                key=f"{STEP}:{enrollment_id}:{position}:at:{_aware(enrollment.next_step_at)}",
                run_at=_aware(enrollment.next_step_at),
            )
        return None
    session.refresh(enrollment)
    return enrollment


def _pending_row(session: Session, enrollment: Enrollment) -> DirectMessage | None:
    """A step stored but never settled (its worker died mid-send): sent again with the same
    Message-ID, so that a copy that did get through is one message to the recipient."""
    return session.scalar(
        select(DirectMessage)
        .where(
            DirectMessage.enrollment_id == enrollment.id,
            DirectMessage.status == direct.SENDING,
        )
        .order_by(DirectMessage.id.desc())
        .limit(1)
    )


def _after_step(
    session: Session, enrollment_id: int, position: int, attempt: int, row: DirectMessage
) -> None:
    enrollment = session.get(Enrollment, enrollment_id)
    if (
        enrollment is None
        or enrollment.state is not EnrollmentState.ACTIVE
        or enrollment.next_position != position
    ):
        return  # unenrolled meanwhile (a reply or a bounce of an earlier step)
    if row.status == direct.SENT:
        _advance(session, enrollment, position)
    elif row.status == direct.BOUNCED:
        _end(
            session,
            enrollment,
            EnrollmentState.BOUNCED,
            f"step {position} bounced: {row.bounce_response}",
        )
    elif attempt + 1 < STEP_ATTEMPTS:
        enrollment.next_step_at = utcnow() + FIRST_RETRY * (2**attempt)
        _schedule(session, enrollment, attempt + 1)
    else:
        _end(
            session,
            enrollment,
            EnrollmentState.STOPPED,
            f"step {position} could not be sent after {STEP_ATTEMPTS} attempts: "
            f"{row.bounce_response}",
        )


def _advance(session: Session, enrollment: Enrollment, position: int) -> None:
    following = session.scalar(
        select(SequenceStep).where(
            SequenceStep.sequence_id == enrollment.sequence_id,
            SequenceStep.position == position + 1,
        )
    )
    enrollment.next_position = position + 1
    if following is None:
        _end(session, enrollment, EnrollmentState.FINISHED, "every step was sent")
        return
    enrollment.next_step_at = utcnow() + timedelta(seconds=following.delay_seconds)
    _schedule(session, enrollment, attempt=0)


def job_handlers(settings: Settings) -> dict[str, jobs.Handler]:
    def step(factory: sessionmaker[Session], payload: dict[str, Any]) -> None:
        run_step(factory, settings, payload)

    return {STEP: step}


def _aware(value: datetime) -> datetime:
    """SQLite gives datetimes back without their zone; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
