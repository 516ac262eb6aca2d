"""The scripted calls the integration tests speak and then check transcripts against."""

from __future__ import annotations

from tests.support.media_factory import Line

GOOD_CALL = [
    Line("agent", "Thank you for calling Acme support, my name is Sarah. "
                  "How can I help you today?"),
    Line("customer", "Hi, I lost my credit card yesterday and I am worried."),
    Line("agent", "I am sorry to hear that, I understand. May I have your full name to verify "
                  "your account?"),
    Line("customer", "My name is John Smith. My email is john at example dot com."),
    Line("customer", "You can reach me at 010 4321 8765."),
    Line("agent", "Thank you. Let me check. I have blocked the card and ordered a replacement. "
                  "You will receive it within five business days."),
    Line("customer", "That is great, thank you so much for your help."),
    Line("agent", "You are welcome. Is there anything else I can help you with? "
                  "Have a great day."),
]  # fmt: skip

BAD_CALL = [
    Line("agent", "Yeah, what do you want?"),
    Line("customer", "My internet has been down for three days and this is ridiculous."),
    Line("agent", "Whatever. That is not my problem, calm down."),
    Line("customer", "This is unacceptable, I am very angry and I want it fixed."),
    Line("agent", "There is nothing I can do. Call back later."),
]  # fmt: skip

# PII the good call speaks: none of these may appear in any table.
SPOKEN_PII = ["example dot com", "example.com", "john@", "4321", "8765", "forty three"]


def script_text(lines: list[Line]) -> str:
    return " ".join(line.text for line in lines)


# A long support call (about five minutes spoken): what the STT benchmark and the batched-path
# tests transcribe. Every line is different, so a repetition loop cannot pass for the script.
LONG_CALL = [
    Line("agent", "Good morning, thank you for calling Northwind Mobile, this is David "
                  "speaking. How may I help you today?"),
    Line("customer", "Good morning. I am calling because my last bill was much higher than "
                     "usual and I do not understand why."),
    Line("agent", "I am sorry about that, I can certainly look into it for you. Could you "
                  "tell me the account holder's name first?"),
    Line("customer", "Yes, the account is under Maria Lopez."),
    Line("agent", "Thank you, Maria. For security, can you confirm the postal code on the "
                  "account?"),
    Line("customer", "It is nine four one zero seven."),
    Line("agent", "Perfect, thank you. I have your account open now. I can see the bill for "
                  "last month came to one hundred and twelve dollars."),
    Line("customer", "Exactly. Normally I pay around sixty dollars, so almost double."),
    Line("agent", "I understand why that would be worrying. Let me go through the charges "
                  "line by line so we can find the difference together."),
    Line("customer", "That would be helpful, thank you."),
    Line("agent", "The first part is your monthly plan, which is fifty five dollars, the same "
                  "as every month."),
    Line("customer", "Right, that part I expected."),
    Line("agent", "Then there is a roaming charge of forty two dollars from the twelfth to "
                  "the fifteenth of the month. Were you travelling abroad around then?"),
    Line("customer", "Oh, yes, I went to Toronto for a conference, but I thought my plan "
                     "included roaming in Canada."),
    Line("agent", "Your plan includes calls and texts in Canada, but mobile data abroad is "
                  "charged separately unless the travel pass is added before the trip."),
    Line("customer", "Nobody told me that when I signed up. That seems unfair."),
    Line("agent", "I hear you, and I am sorry it was not made clear. I can see you used about "
                  "two gigabytes of data during those four days."),
    Line("customer", "I used the maps a lot and I had a few video calls with my family."),
    Line("agent", "That explains the data use. Because this is the first time it happened on "
                  "your account, I can apply a one time credit for half of the roaming charge."),
    Line("customer", "Half is better than nothing, but is there any way to remove all of it?"),
    Line("agent", "Let me check with the options I have. One moment please, I will place you "
                  "on a short hold while I ask my supervisor."),
    Line("customer", "Okay, I will wait."),
    Line("agent", "Thank you for holding. My supervisor approved a full credit of forty two "
                  "dollars as a goodwill gesture."),
    Line("customer", "That is wonderful, thank you very much."),
    Line("agent", "You are welcome. The credit will appear on your next bill, so the amount "
                  "due will be lower by forty two dollars."),
    Line("customer", "Do I need to pay the current bill in full now?"),
    Line("agent", "You can pay the plan amount now, and the credit will balance the rest on "
                  "the next statement. There will be no late fee."),
    Line("customer", "Great. Also, I am travelling to Spain in two weeks. What should I do?"),
    Line("agent", "For Spain, I recommend the Europe travel pass. It costs ten dollars per day "
                  "and includes five gigabytes of data for the whole trip."),
    Line("customer", "Ten dollars per day for how many days at most?"),
    Line("agent", "You only pay for the days you actually use data, and the charge stops at "
                  "seventy dollars for a single trip."),
    Line("customer", "That sounds reasonable. Can you add it for me?"),
    Line("agent", "Of course. Which dates will you be in Spain?"),
    Line("customer", "From the third to the tenth of next month."),
    Line("agent", "I have added the travel pass for those dates. You will get a text message "
                  "when you land, confirming that the pass is active."),
    Line("customer", "Will my phone number stay the same while I am there?"),
    Line("agent", "Yes, your number stays the same, and incoming calls work exactly as they "
                  "do at home."),
    Line("customer", "Perfect. One more question: can I get my bills by email instead of "
                     "paper?"),
    Line("agent", "Certainly. I have switched your account to electronic billing, and the next "
                  "bill will arrive by email."),
    Line("customer", "Thank you, that is everything I needed."),
    Line("agent", "To summarize, I applied a credit of forty two dollars, added the Europe "
                  "travel pass for your trip, and switched you to electronic bills."),
    Line("customer", "That is right. You have been very helpful."),
    Line("agent", "It was my pleasure, Maria. Is there anything else I can help you with "
                  "today?"),
    Line("customer", "No, that is all. Have a good day."),
    Line("agent", "You too, and enjoy your trip to Spain. Thank you for choosing Northwind "
                  "Mobile. Goodbye."),
]  # fmt: skip
