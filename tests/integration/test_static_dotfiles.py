#!/usr/bin/env python3
"""Static files: names starting with '.' are 404 by default (.git, .env,
.htpasswd, also as a directory on the way) and served on a route with
dotfiles = on."""

import sys
sys.dont_write_bytecode = True

import os

import weirtest
from weirtest import SERVER

INI = SERVER + """
[route dots]
match = prefix:/dots/
root = @ROOT@
strip_prefix = /dots
dotfiles = on

[route site]
match = prefix:/
root = @ROOT@
"""


class StaticDotfilesTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "www")
        os.makedirs(os.path.join(root, ".git"))
        os.makedirs(os.path.join(root, ".well-known"))
        for name, data in ((".env", b"SECRET=1"), (".htpasswd", b"u:p"),
                           (".git/config", b"[core]"), (".well-known/security.txt", b"sec")):
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        return {"ROOT": root}

    def test_hidden_by_default(self):
        for target in ("/.env", "/.htpasswd", "/.git/config", "/%2eenv", "/.well-known/security.txt"):
            r = self.get(target)
            self.assertEqual(r.status, 404, target)
            self.assertNotIn(b"SECRET", r.body)

    def test_opt_in(self):
        self.assertEqual(self.get("/dots/.env").body, b"SECRET=1")
        self.assertEqual(self.get("/dots/.well-known/security.txt").body, b"sec")
        self.assertEqual(self.get("/dots/.git/config").status, 200)


if __name__ == "__main__":
    weirtest.main()
