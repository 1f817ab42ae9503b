"""Makes the Django password hashes that test/src/django-hashes.test.ts holds as literals.

Independent of the code under test: Python's standard library reproduces Django's encoders
(django/contrib/auth/hashers.py, Django 3.2 to 5), and Debian's python3-argon2 (argon2-cffi, the
library Django's Argon2PasswordHasher calls) and python3-bcrypt (the library Django's bcrypt hashers
call) make the argon2 and bcrypt ones. Salts are random, so each run prints new hashes.

    apt-get install python3-argon2 python3-bcrypt && /usr/bin/python3 test/src/make-django-hashes.py
"""
import base64
import binascii
import hashlib
import json
import secrets
import string

import argon2
import bcrypt


def django_salt():
    # Django's get_random_string(22): letters and digits.
    return ''.join(secrets.choice(string.ascii_letters + string.digits) for _ in range(22))


def pbkdf2(algorithm, digest, password, iterations, salt=None):
    salt = salt or django_salt()
    derived = hashlib.pbkdf2_hmac(digest, password.encode(), salt.encode(), iterations)
    return '%s$%d$%s$%s' % (algorithm, iterations, salt, base64.b64encode(derived).decode('ascii').strip())


def scrypt(password, n=2**14, r=8, p=1, salt=None):
    salt = salt or django_salt()
    derived = hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=128 * n * r * p + 2**20, dklen=64)
    return 'scrypt$%d$%s$%d$%d$%s' % (n, salt, r, p, base64.b64encode(derived).decode('ascii'))


def django_argon2(password, variant, time_cost, memory_cost, parallelism):
    # Django's Argon2PasswordHasher.encode: 'argon2' + argon2-cffi's PHC string, 16-byte hash.
    data = argon2.low_level.hash_secret(
        password.encode(), django_salt().encode(), time_cost=time_cost, memory_cost=memory_cost,
        parallelism=parallelism, hash_len=argon2.DEFAULT_HASH_LENGTH, type=variant)
    return 'argon2' + data.decode('ascii')


def django_bcrypt_sha256(password, rounds):
    # Django's BCryptSHA256PasswordHasher: bcrypt of the hex SHA-256 of the password.
    data = bcrypt.hashpw(binascii.hexlify(hashlib.sha256(password.encode()).digest()), bcrypt.gensalt(rounds))
    return 'bcrypt_sha256$' + data.decode('ascii')


def django_bcrypt(password, rounds):
    data = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds))
    return 'bcrypt$' + data.decode('ascii')


# Django's own published vectors (tests/auth_tests/test_hashers.py) must come out the same.
assert pbkdf2('pbkdf2_sha256', 'sha256', 'lètmein', 390000, 'seasalt') == \
    'pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c='
assert pbkdf2('pbkdf2_sha1', 'sha1', 'lètmein', 390000, 'seasalt2') == \
    'pbkdf2_sha1$390000$seasalt2$aDapRanzW8aHTz97v2TcfHzWD+I='
assert scrypt('lètmein', salt='seasalt') == \
    'scrypt$16384$seasalt$8$1$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw=='

long_password = 'x' * 72 + 'ignored by bcrypt'
print(json.dumps({
    'pbkdf2_sha256 720000 lètmein': pbkdf2('pbkdf2_sha256', 'sha256', 'lètmein', 720000),
    'pbkdf2_sha256 1000 correct horse': pbkdf2('pbkdf2_sha256', 'sha256', 'correct horse', 1000),
    'pbkdf2_sha256 1000 empty': pbkdf2('pbkdf2_sha256', 'sha256', '', 1000),
    'pbkdf2_sha1 1000 correct horse': pbkdf2('pbkdf2_sha1', 'sha1', 'correct horse', 1000),
    'pbkdf2_sha256 2000001 x': pbkdf2('pbkdf2_sha256', 'sha256', 'x', 2000001, 'seasalt'),
    'scrypt 1024 8 1 correct horse': scrypt('correct horse', n=1024),
    'argon2id django defaults lètmein': django_argon2('lètmein', argon2.low_level.Type.ID, 2, 102400, 8),
    'argon2id small correct horse': django_argon2('correct horse', argon2.low_level.Type.ID, 1, 1024, 2),
    'argon2i small correct horse': django_argon2('correct horse', argon2.low_level.Type.I, 1, 1024, 2),
    'bcrypt_sha256 12 lètmein': django_bcrypt_sha256('lètmein', 12),
    'bcrypt_sha256 4 correct horse': django_bcrypt_sha256('correct horse', 4),
    'bcrypt_sha256 4 long': django_bcrypt_sha256(long_password, 4),
    'bcrypt 4 correct horse': django_bcrypt('correct horse', 4),
    'bcrypt 4 long': django_bcrypt(long_password, 4),
}, ensure_ascii=False, indent=2))
