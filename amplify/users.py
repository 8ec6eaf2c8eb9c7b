"""People: sign-in (argon2 hashes), roles, and who may manage whom."""

from __future__ import annotations

from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from amplify import sessions
from amplify.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from amplify.models import Role, Setting, User
from amplify.permissions import Action, require
from amplify.workflow import audit

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# zxcvbn scores 0-4; 3 means "safely unguessable" (about 10^10 guesses): strong enough here.
MIN_PASSWORD_SCORE = 3
# zxcvbn slows down sharply on long inputs; beyond this the length alone makes it strong.
_ZXCVBN_CHARS = 100
# A row only the first admin's transaction can insert: a second concurrent claim fails on its key.
FIRST_ADMIN_KEY = "workspace.first_admin"
FIRST_ADMIN_TAKEN = (
    "Someone has just created this workspace's first admin. Ask them to add you, then sign in."
)

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("amplify-timing-equaliser")


def hash_password(pw: str) -> str:
    return _hasher.hash(pw)


def verify_password(hash: str, pw: str) -> bool:
    try:
        return _hasher.verify(hash, pw)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    """The stored form of an address (lower case); ValidationFailed if it is not one."""
    try:
        result = validate_email((email or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed([f"That email address does not look right: {exc}"]) from None
    return result.normalized.lower()


def password_problems(password: str, *hints: str) -> list[str]:
    """Why a new password is refused (empty when it is fine). ``hints``: the person's email
    and name, which a password should not be built from."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        return [f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters."]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [f"Choose a password of at most {MAX_PASSWORD_LENGTH} characters."]
    words = [w for h in hints for w in [h, *h.replace("@", " ").replace(".", " ").split()] if w]
    result = zxcvbn(password[:_ZXCVBN_CHARS], user_inputs=["amplify", *words])
    if int(result["score"]) >= MIN_PASSWORD_SCORE:
        return []
    feedback = result.get("feedback") or {}
    why = str(feedback.get("warning") or "").strip()
    tips = [str(tip) for tip in feedback.get("suggestions") or []]
    parts = ["That password is too easy to guess.", why, *tips]
    parts.append("A few unrelated words together make a strong one.")
    return [" ".join(p for p in parts if p)]


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationFailed(
            [f"Unknown role {value!r}; choose volunteer, lead or admin."]
        ) from None


def has_users(s: Session) -> bool:
    return s.scalar(select(User.id).limit(1)) is not None


def get_by_email(s: Session, email: str) -> User | None:
    try:
        key = normalise_email(email)
    except ValidationFailed:
        return None
    return s.scalar(select(User).where(User.email == key))


def get_user(s: Session, user_id: int) -> User:
    user = s.get(User, user_id)
    if user is None:
        raise NotFound(f"There is no person #{user_id}; reload the page.")
    return user


def list_users(s: Session, *, include_inactive: bool = True) -> Sequence[User]:
    stmt = select(User).order_by(User.name, User.id)
    if not include_inactive:
        stmt = stmt.where(User.active.is_(True))
    return s.scalars(stmt).all()


def create_user(
    s: Session, actor: User | None, *, email: str, name: str, role: str, password: str
) -> User:
    """Add a person. With no actor only the very first person, who must be an admin."""
    if actor is None:
        if has_users(s):
            raise NotAllowed(
                "Only admins can add people, and this workspace already has its first admin: "
                "ask an admin to add you, then sign in."
            )
        if role != Role.ADMIN:
            raise ValidationFailed(["The first person in a workspace must be an admin."])
    else:
        require(actor, Action.MANAGE_USERS)

    problems: list[str] = []
    key = ""
    try:
        key = normalise_email(email)
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    if not (name or "").strip():
        problems.append("Give the person's name.")
    try:
        chosen = _role(role)
    except ValidationFailed as exc:
        problems.extend(exc.problems)
    problems.extend(password_problems(password, key, name or ""))
    if key and s.scalar(select(User.id).where(User.email == key)) is not None:
        problems.append(f"Someone already signs in as {key}; use another email address.")
    if problems:
        raise ValidationFailed(problems)
    if actor is None:
        _claim_first_admin(s, key)

    user = User(
        email=key,
        name=name.strip(),
        role=str(chosen),
        password_hash=hash_password(password),
        active=True,
    )
    s.add(user)
    s.flush()
    audit(s, actor or user, "user.created", "user", user.id, email=key, role=str(chosen))
    return user


def _claim_first_admin(s: Session, email: str) -> None:
    """Insert the fixed-key settings row in this transaction. Two claims at once: the second
    waits on (PostgreSQL) or queues behind (SQLite) the first and then fails on the key."""
    try:
        with s.begin_nested():
            s.add(Setting(key=FIRST_ADMIN_KEY, value={"email": email}))
            s.flush()
    except IntegrityError:
        raise Conflict(FIRST_ADMIN_TAKEN) from None


def authenticate(s: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, else None (no hint which was wrong)."""
    user = get_by_email(s, email)
    if user is None or not user.password_hash:
        verify_password(_DUMMY_HASH, password or "")
        return None
    if not verify_password(user.password_hash, password or ""):
        return None
    if not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _active_admin_ids(s: Session) -> list[int]:
    # FOR UPDATE (PostgreSQL): two admins demoting each other at once cannot both win.
    stmt = select(User.id).where(User.role == Role.ADMIN, User.active.is_(True)).with_for_update()
    return list(s.scalars(stmt))


def _guard_last_admin(s: Session, user: User, *, role: str, active: bool) -> None:
    stays_admin = role == Role.ADMIN and active
    if stays_admin or not (user.role == Role.ADMIN and user.active):
        return
    others = [uid for uid in _active_admin_ids(s) if uid != user.id]
    if not others:
        raise ValidationFailed(
            [f"{user.name} is the last active admin; make someone else an admin first."]
        )


def set_role(s: Session, actor: User, user_id: int, role: str) -> User:
    require(actor, Action.MANAGE_USERS)
    user = get_user(s, user_id)
    chosen = _role(role)
    if user.role == chosen:
        return user
    _guard_last_admin(s, user, role=chosen, active=user.active)
    before = user.role
    user.role = str(chosen)
    audit(s, actor, "user.role_changed", "user", user.id, before=before, after=str(chosen))
    s.flush()
    return user


def set_active(s: Session, actor: User, user_id: int, active: bool) -> User:
    require(actor, Action.MANAGE_USERS)
    user = get_user(s, user_id)
    if user.active == active:
        return user
    _guard_last_admin(s, user, role=user.role, active=active)
    user.active = active
    ended = 0 if active else sessions.revoke_all(s, user.id)
    audit(
        s,
        actor,
        "user.activated" if active else "user.deactivated",
        "user",
        user.id,
        **({} if active else {"sessions_ended": ended}),
    )
    s.flush()
    return user


def set_password(
    s: Session,
    actor: User,
    user_id: int,
    *,
    new_password: str,
    current_password: str | None = None,
    keep_session: str | None = None,
) -> int:
    """A person changes their own password (giving the current one); an admin sets anyone's.
    Every other signed-in browser of that person is signed out (``keep_session``: the token
    hash of the browser making the change, which stays signed in). Returns how many ended."""
    user = get_user(s, user_id)
    if user.id == actor.id and actor.active:
        if not verify_password(user.password_hash or "", current_password or ""):
            raise ValidationFailed(["Your current password is not right; type it again."])
    else:
        require(actor, Action.MANAGE_USERS)
        keep_session = None
    change_password(s, user, new_password)
    ended = sessions.revoke_all(s, user.id, keep=keep_session)
    audit(s, actor, "user.password_changed", "user", user.id, sessions_ended=ended)
    s.flush()
    return ended


def change_password(s: Session, user: User, new_password: str) -> None:
    """Check and store a new password (no permission check: callers do that)."""
    problems = password_problems(new_password, user.email, user.name)
    if problems:
        raise ValidationFailed(problems)
    user.password_hash = hash_password(new_password)


def count_users(s: Session) -> int:
    return s.scalar(select(func.count(User.id))) or 0
