"""A stand-in agent: lists the open issues of a repository through the GitHub API."""

import os

import httpx

token = os.environ.get("GITHUB_TOKEN", "")
headers = {"Authorization": f"Bearer {token}"} if token else {}
response = httpx.get("https://api.github.com/repos/python/cpython/issues", headers=headers)
for issue in response.json()[:5]:
    print(issue["number"], issue["title"])
