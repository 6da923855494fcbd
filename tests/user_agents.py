"""Real-shaped user agents: phones inside apps with a built-in browser, and ordinary browsers.
Plain data for the unit and browser tests (issue #14)."""

from __future__ import annotations

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/131.0.6778.135 Mobile Safari/537.36"
)

# The user agents a phone sends from inside each app (iOS, then Android).
IN_APP_USER_AGENTS = {
    "Facebook": [
        IPHONE + " [FBAN/FBIOS;FBAV/493.0.0.38.107;FBBV/700000000;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/18.5]",
        ANDROID + " [FB_IAB/FB4A;FBAV/493.0.0.49.64;]",
    ],
    "Messenger": [
        IPHONE + " [FBAN/MessengerForiOS;FBAV/486.0.0.30.107;FBBV/690000000;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS]",
        ANDROID + " [FB_IAB/Orca-Android;FBAV/486.0.0.25.109;]",
    ],
    "Instagram": [
        IPHONE + " Instagram 361.0.0.35.82 (iPhone15,2; iOS 18_5; en_US; en; scale=3.00; 1179x2556; 674117118)",
        ANDROID
        + " Instagram 361.0.0.46.88 Android (34/14; 420dpi; 1080x2400; Google; Pixel 8; shiba; en_US; 674675155)",
    ],
    "LinkedIn": [
        IPHONE + " [LinkedInApp]/9.31.1733",
        ANDROID + " [LinkedInApp]/4.1.1001",
    ],
    "X (Twitter)": [
        IPHONE + " Twitter for iPhone/10.68",
        ANDROID + " TwitterAndroid",
    ],
    "TikTok": [
        IPHONE + " musical_ly_37.5.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US",
        ANDROID + " trill_370503 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/trill app_version/37.5.3 "
        "ByteLocale/en BytedanceWebview/d8a21c6",
    ],
    "Snapchat": [
        IPHONE + " Snapchat/13.40.0.43 (like Safari/8619.1.26.30.5, panda)",
        ANDROID + " Snapchat/13.41.0.53 (Pixel 8; Android 14#a#34; gzip)",
    ],
    "LINE": [
        IPHONE + " Safari Line/15.2.0",
        ANDROID + " Line/15.2.1/IAB",
    ],
    "WeChat": [
        IPHONE + " MicroMessenger/8.0.54(0x18003630) NetType/WIFI Language/en",
        ANDROID + " XWEB/1300199 MMWEBSDK/20240802 MMWEBID/1234 MicroMessenger/8.0.51.2720(0x28003339) WeChat/arm64",
    ],
    "Google": [
        IPHONE.replace(" Mobile/15E148", " GSA/350.0.698689133 Mobile/15E148 Safari/604.1"),
        ANDROID + " GSA/15.48.36.29.arm64",
    ],
}

ORDINARY_BROWSERS = [
    IPHONE + " Version/18.5 Safari/604.1",  # Safari
    IPHONE.replace(") Mobile", ") CriOS/131.0.6778.73 Mobile") + " Safari/604.1",  # Chrome on iOS
    "Mozilla/5.0 (Linux; Android 14; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/27.0 "
    "Chrome/125.0.0.0 Mobile Safari/537.36",
    "",
]
